// Device is a setting (docs/libtorch.md): per-step code must not read a tensor
// back to the host, since on CUDA every such read waits for the device. On the
// CPU the same reads are the dispatcher's aten::_local_scalar_dense calls (what
// .item() runs); counted here over one sampler call, they must not grow with the
// number of steps. (Copies of whole tensors to the host are reviewed instead:
// on the CPU they are no-ops the dispatcher never sees.)
#include <ATen/record_function.h>
#include <gtest/gtest.h>

#include <cstring>

#include "../data/fixtures/mixture_checks.hpp"

using genfw::OptionValue;

namespace {

int64_t& host_reads() {
  static thread_local int64_t count = 0;
  return count;
}

std::unique_ptr<at::ObserverContext> count_host_read(const at::RecordFunction& op) {
  if (std::strcmp(op.name(), "aten::_local_scalar_dense") == 0) ++host_reads();
  return nullptr;
}

/// The host reads of `body`, on this thread (where the sampler's ops are dispatched).
int64_t host_reads_of(const std::function<void()>& body) {
  const auto handle =
      at::addThreadLocalCallback(at::RecordFunctionCallback(&count_host_read).scopes({at::RecordScope::FUNCTION}));
  host_reads() = 0;
  body();
  at::removeCallback(handle);
  return host_reads();
}

struct StepBudget {
  std::string sampler, model, key;
  int64_t small, large;
};

std::unique_ptr<genfw::Model> exact_model(const std::string& kind, int64_t timesteps) {
  const auto build = genfw::testing::context_for({2}, -8, 8);
  if (kind == "score") {
    return genfw::testing::make<genfw::Model>(
        genfw::Kind::model, "analytic_gmm",
        {{"sigma_begin", 20.0}, {"sigma_end", 0.01}, {"num_levels", int64_t(10)}}, build);
  }
  return genfw::testing::make<genfw::Model>(genfw::Kind::model, "analytic_gmm_eps",
                                            {{"num_train_timesteps", timesteps}}, build);
}

int64_t host_reads_of_sampling(const StepBudget& c, int64_t steps) {
  // ddpm takes every step of the model's discretisation: its budget is the model's.
  const bool budget_is_the_models = c.key == "num_train_timesteps";
  auto model = exact_model(c.model, budget_is_the_models ? steps : 100);
  std::map<std::string, OptionValue> options;
  if (!budget_is_the_models) options[c.key] = steps;
  auto sampler = genfw::testing::make<genfw::Sampler>(genfw::Kind::sampler, c.sampler, options,
                                                      genfw::testing::context_for({2}, -8, 8));
  torch::manual_seed(0);
  return host_reads_of([&] { genfw_sde::test::draw(*sampler, *model, 64); });
}

}  // namespace

// Every fixed-step sampler, on an exact score model or ε-model: the same number of
// host reads for a budget and its double. (ode is left out: an adaptive solver
// accepts or rejects each step on the host by design.)
TEST(HostSyncs, NoSamplerReadsTheDeviceOncePerStep) {
  const std::vector<StepBudget> cases{
      {"ddpm", "epsilon", "num_train_timesteps", 20, 40},
      {"ddim", "epsilon", "num_inference_steps", 10, 20},
      {"dpm_solver", "epsilon", "steps", 10, 20},
      {"edm", "epsilon", "steps", 10, 20},
      {"annealed_langevin", "score", "steps_per_level", 2, 4},
      {"langevin", "score", "steps", 10, 20},
      {"pc", "score", "steps", 10, 20},
      {"reverse_sde", "score", "steps", 10, 20},
  };
  for (const auto& c : cases) {
    const int64_t small = host_reads_of_sampling(c, c.small), large = host_reads_of_sampling(c, c.large);
    std::printf("[ %-17s ] host reads: %lld at %s = %lld, %lld at %lld\n", c.sampler.c_str(), (long long)small,
                c.key.c_str(), (long long)c.small, (long long)large, (long long)c.large);
    EXPECT_EQ(small, large) << c.sampler << " reads the host once per step or more";
  }
}

// The counter sees what it must: one read per .item().
TEST(HostSyncs, TheCounterSeesEveryItem) {
  const auto x = torch::arange(5, torch::kFloat32);
  EXPECT_EQ(host_reads_of([&] {
              for (int64_t i = 0; i < 5; ++i) (void)x[i].item<float>();
            }),
            5);
}
