// `runner import ncsn` (genfw/import_ncsn.hpp, docs/import.md): the original NCSN
// code's checkpoint (ermongroup/ncsn, runners/anneal_runner.py, models/
// cond_refinenet_dilated.py) mapped onto the ncsn plugin, which builds the same
// network under its own module names.
#include "genfw/import_ncsn.hpp"

#include <cstring>
#include <regex>

#include "genfw/error.hpp"
#include "genfw/pytorch_checkpoint.hpp"
#include "genfw/registry.hpp"
#include "genfw/sha256.hpp"

namespace genfw {

namespace {

constexpr const char* kDataParallelPrefix = "module.";

bool starts_with(const std::string& text, const std::string& prefix) { return text.rfind(prefix, 0) == 0; }

// What other score-model codes save, refused naming it: their networks are not genfw's ncsn.
void refuse_score_sde(const PickleValue& root, const std::string& path) {
  GENFW_CHECK(!(root.type == PickleValue::Type::dict && root.find("model") && root.find("step")), path,
              ": a score_sde checkpoint (model, ema, optimizer, step: NCSN++ or DDPM++), whose networks genfw does "
              "not have; `runner import ncsn` reads the original NCSN's checkpoint.pth (ermongroup/ncsn)");
}

// NCSNv2's unconditional InstanceNorm++ has an `alpha` of its own (here without `module.`).
void refuse_ncsnv2(const std::map<std::string, torch::Tensor>& tensors, const std::string& path) {
  GENFW_CHECK(!tensors.count("normalizer.alpha"), path,
              ": an NCSNv2 checkpoint (ermongroup/ncsnv2: an unconditional RefineNet whose output is divided by "
              "σ), whose network genfw does not have; `runner import ncsn` reads the original NCSN's "
              "checkpoint.pth (ermongroup/ncsn)");
}

// The network's state dict: the first element of anneal_runner's [state_dict, optimizer_state],
// or a state dict saved alone.
std::map<std::string, torch::Tensor> network_tensors(const PickleValue& root, const std::string& path) {
  refuse_score_sde(root, path);
  std::map<std::string, torch::Tensor> tensors;
  if (root.type == PickleValue::Type::list || root.type == PickleValue::Type::tuple) {
    GENFW_CHECK(!root.items.empty(), path, ": an empty list, expected [state_dict, optimizer_state]");
    tensors = state_dict_tensors(*root.items[0], path, "the first element of the saved list");
  } else {
    tensors = state_dict_tensors(root, path, "the saved object");
  }
  bool wrapped = !tensors.empty();
  for (const auto& [name, tensor] : tensors) wrapped = wrapped && starts_with(name, kDataParallelPrefix);
  if (wrapped) {
    std::map<std::string, torch::Tensor> bare;
    for (auto& [name, tensor] : tensors) bare[name.substr(std::strlen(kDataParallelPrefix))] = tensor;
    tensors = std::move(bare);
  }
  refuse_ncsnv2(tensors, path);
  return tensors;
}

const torch::Tensor& tensor_named(const ImportedNetwork& plan, const std::string& name, int64_t dims) {
  auto found = plan.tensors.find(name);
  GENFW_CHECK(found != plan.tensors.end(), plan.weights, ": no tensor ", name,
              ": not a checkpoint of NCSN's CondRefineNetDilated (its first tensors: begin_conv.weight, ",
              "normalizer.embed.weight)");
  GENFW_CHECK(found->second.dim() == dims, plan.weights, ": ", name, " is ", found->second.sizes(), ", expected ",
              dims, " dimensions");
  return found->second;
}

}  // namespace

std::string ncsn_reference_name_of(const std::string& name) {
  static const std::vector<std::pair<std::regex, std::string>> renames{
      {std::regex(R"(^res(\d)_(\d)\.)"), "res$1.$2."},                          // ModuleList entries
      {std::regex(R"(^(res\d\.\d)\.norm(\d)\.)"), "$1.normalize$2."},            // ConditionalResidualBlock
      {std::regex(R"(^res2\.0\.(conv2|shortcut)\.)"), "res2.0.$1.conv."},       // ConvMeanPool's inner conv
      {std::regex(R"(\.(msf|crp)\.norm(\d+)\.)"), ".$1.norms.$2."},             // CondMSFBlock, CondCRPBlock
      {std::regex(R"(\.(msf|crp)\.conv(\d+)\.)"), ".$1.convs.$2."},
      {std::regex(R"(\.adapt(\d+)\.)"), ".adapt_convs.$1."},                    // CondRefineBlock
      {std::regex(R"(\.output\.)"), ".output_convs."}};
  std::string out = name;
  for (const auto& [pattern, replacement] : renames) out = std::regex_replace(out, pattern, replacement);
  return out;
}

ImportedNetwork plan_ncsn_import(const std::string& checkpoint) {
  ImportedNetwork plan;
  plan.format = "ncsn";
  plan.source = checkpoint;
  plan.weights = checkpoint;
  plan.tensors = network_tensors(*read_pytorch_checkpoint(checkpoint), checkpoint);  // says first what is wrong
  plan.weights_sha256 = sha256_of_file(checkpoint);
  const auto& begin = tensor_named(plan, "begin_conv.weight", 4);         // [ngf, C, 3, 3]
  const auto& embed = tensor_named(plan, "normalizer.embed.weight", 2);   // [L, 3·ngf]
  const int64_t ngf = begin.size(0), channels = begin.size(1), levels = embed.size(0);
  GENFW_CHECK(embed.size(1) == 3 * ngf, checkpoint, ": normalizer.embed.weight is ", embed.sizes(), ", expected [L, ",
              3 * ngf, "] (CondInstanceNorm++ of ", ngf, " channels)");
  // The reference's image sizes: 28×28 for its 1-channel MNIST, 32×32 for CIFAR-10 and CelebA.
  plan.sample_shape = channels == 1 ? std::vector<int64_t>{1, 28, 28} : std::vector<int64_t>{channels, 32, 32};
  plan.model_plugin = "ncsn";
  plan.model = {{"ngf", ngf}, {"num_levels", levels}, {"sigma_begin", 1.0}, {"sigma_end", 0.01},
                {"scale_by_sigma", false}};
  plan.data = {{"range", std::string("zero_one")}};
  plan.sampler_plugin = "annealed_langevin";
  plan.sampler = {{"steps_per_level", int64_t(100)}, {"step_size", 2e-5}, {"init", std::string("uniform")},
                  {"denoise", false}};
  plan.notes.push_back(checkpoint + " does not record the noise levels or the data range: the reference's configs "
                       "were assumed (σ 1 → 0.01 geometric over the checkpoint's " + std::to_string(levels) +
                       " levels, data in [0, 1]); change them with --set model.sigma_begin=…, model.sigma_end=…");
  if (channels == 1) {
    plan.notes.push_back("a 1-channel checkpoint of the reference is MNIST: the run's data is fashion_mnist's "
                         "reader; point it at MNIST's IDX files with --set data.path=FOLDER");
  }
  return plan;
}

void load_ncsn_weights(torch::nn::Module& model, const ImportedNetwork& plan) {
  load_named_weights(model, plan.tensors, ncsn_reference_name_of, plan.weights);
}

std::string import_ncsn(const ImportRequest& request, const Registry& registry) {
  return write_imported_run(plan_ncsn_import(request.source), request, registry,
                            [](Model& model, ImportedNetwork& plan) { load_ncsn_weights(model, plan); });
}

}  // namespace genfw
