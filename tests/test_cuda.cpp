// device = "cuda" end to end (docs/libtorch.md): sampling on the GPU draws the
// CPU's samples (the noise streams do not depend on the device), a model trained
// on the GPU checkpoints to weights the CPU samples from, every precision trains,
// and NCCL's collectives work. Without a GPU every test is skipped, saying why;
// tools/gpu_check.sh runs them on one.
#include <torch/cuda.h>

#include <ATen/Context.h>

#include "genfw/distributed.hpp"
#include "genfw/pipeline.hpp"
#include "genfw/precision.hpp"
#include "genfw/version.hpp"
#include "support.hpp"

using namespace test_support;

namespace {

#define SKIP_WITHOUT_CUDA()                                                                            \
  if (!torch::cuda::is_available())                                                                    \
  GTEST_SKIP() << "no CUDA device for this LibTorch (" << GENFW_TORCH_VERSION_STRING                   \
               << "): the CUDA tests run on a GPU machine (tools/gpu_check.sh)"

std::string mixture_sampling(const std::string& model, const std::string& sampler) {
  return "name = \"cuda_sampling\"\nseed = 5\n" + two_mode_mixture_data(100) + model + "\n[sampler]\nplugin = \"" +
         sampler + "\"\nnum_samples = 200\nbatch_size = 100\n[log]\nprogress = \"off\"\n";
}

const std::string kExactScoreModel = R"(
[model]
plugin = "analytic_gmm"
means = [[-2.0, 0.0], [2.0, 0.0]]
weights = [0.5, 0.5]
stds = [0.5, 0.5]
)";

torch::Tensor samples_on(const std::string& device, const std::string& experiment_file) {
  genfw::RunRequest request;
  request.experiment = experiment_file;
  request.device = device;
  return genfw::Pipeline(request, builtins()).sample().samples.to(torch::kCPU);
}

}  // namespace

// Each sample's noise is keyed by (seed, sample index), whatever the device, so a
// sampler on the GPU draws the CPU's samples up to float32 kernel rounding.
TEST(Cuda, EverySamplerDrawsTheCpusSamplesOnTheGpu) {
  SKIP_WITHOUT_CUDA();
  TempDir dir;
  int compared = 0;
  for (const std::string sampler : {"ddpm", "ddim", "dpm_solver", "edm", "annealed_langevin", "langevin", "pc",
                                    "ode", "reverse_sde"}) {
    for (const std::string& model : {two_mode_mixture_eps_model(100), kExactScoreModel}) {
      const std::string file = dir.file(sampler + ".toml", mixture_sampling(model, sampler));
      torch::Tensor on_cpu;
      try {
        on_cpu = samples_on("cpu", file);
      } catch (const genfw::Error& e) {  // a composition the sampler does not support on any device
        EXPECT_CONTAINS(e.what(), "needs capability");
        continue;
      }
      const torch::Tensor on_gpu = samples_on("cuda", file);
      const double largest = (on_gpu - on_cpu).abs().max().item<double>();
      std::cout << sampler << ": largest difference between cuda and cpu samples " << largest << "\n";
      EXPECT_LT(largest, 1e-3) << sampler;
      ++compared;
    }
  }
  EXPECT_GE(compared, 9);  // every sampler ran on at least one of the two exact models
}

// Training on the GPU at every precision: finite losses, a completed run, and a
// checkpoint the CPU loads (`runner sample --device cpu` on a run trained on cuda).
TEST(Cuda, TrainsAtEveryPrecisionAndTheCpuSamplesTheCheckpoint) {
  SKIP_WITHOUT_CUDA();
  TempDir dir;
  for (const std::string& precision : genfw::precision_choices()) {
    const std::string experiment = "name = \"cuda_" + precision + "\"\nseed = 3\ndevice = \"cuda\"\n" +
                                   two_mode_mixture_data(256) + R"(
[model]
plugin = "eps_mlp"
[objective]
plugin = "ddpm"
[train]
steps = 30
batch_size = 64
log_every = 10
precision = ")" + precision + R"("
[sampler]
plugin = "ddim"
num_samples = 64
num_inference_steps = 10
[log]
progress = "off"
)";
    genfw::RunRequest request;
    request.experiment = dir.file("train_" + precision + ".toml", experiment);
    request.out_dir = dir / ("run_" + precision);
    const std::string run_file = genfw::run_experiment(request, builtins());

    genfw::RunRequest resample;
    resample.parent_run = run_file;
    resample.device = "cpu";
    resample.out_dir = dir / ("cpu_" + precision);
    const torch::Tensor samples = genfw::Pipeline(resample, builtins()).sample().samples;
    EXPECT_EQ(samples.device().type(), torch::kCPU);
    EXPECT_TRUE(torch::isfinite(samples).all().item<bool>()) << precision;
  }
}

// "tf32" turns the TF32 switches on inside its scope, "fp32" off, and both come back after.
TEST(Cuda, PrecisionScopesSetAndRestoreTheTf32Switches) {
  SKIP_WITHOUT_CUDA();
  auto& context = at::globalContext();
  context.setAllowTF32CuBLAS(false);
  context.setAllowTF32CuDNN(true);  // LibTorch's own default
  {
    genfw::AutocastScope tf32("tf32", torch::kCUDA);
    EXPECT_TRUE(context.allowTF32CuBLAS());
    EXPECT_TRUE(context.allowTF32CuDNN());
  }
  {
    genfw::AutocastScope fp32("fp32", torch::kCUDA);
    EXPECT_FALSE(context.allowTF32CuBLAS());
    EXPECT_FALSE(context.allowTF32CuDNN());
  }
  EXPECT_FALSE(context.allowTF32CuBLAS());
  EXPECT_TRUE(context.allowTF32CuDNN());
  const auto a = torch::randn({64, 64}, torch::kCUDA);
  genfw::AutocastScope bf16("bf16", torch::kCUDA);
  EXPECT_EQ(torch::mm(a, a).scalar_type(), torch::kBFloat16);
}

// NCCL's collectives on this GPU, in a group of one rank (one GPU cannot host two NCCL ranks).
TEST(Cuda, NcclAveragesAndBroadcastsOnTheGpu) {
  SKIP_WITHOUT_CUDA();
  genfw::LaunchEnvironment launch;
  launch.rank = 0;
  launch.world_size = 1;
  launch.master_addr = "127.0.0.1";
  launch.master_port = 29500 + int(::getpid() % 1000);
  genfw::DistributedSettings settings;
  settings.backend = "nccl";
  settings.timeout_seconds = 60;
  genfw::DataParallel group(launch, settings);
  auto parameter = torch::zeros({3}, torch::TensorOptions().device(torch::kCUDA).requires_grad(true));
  parameter.mutable_grad() = torch::full({3}, 2.0f, torch::kCUDA);
  std::vector<torch::Tensor> parameters{parameter};
  group.average_gradients(parameters);
  EXPECT_TRUE(torch::equal(parameter.grad().cpu(), torch::full({3}, 2.0f)));
  std::vector<torch::Tensor> weights{torch::full({2, 2}, 5.0f, torch::kCUDA)};
  group.broadcast_from_rank0(weights);
  EXPECT_TRUE(torch::equal(weights[0].cpu(), torch::full({2, 2}, 5.0f)));
}
