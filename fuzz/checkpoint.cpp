// Fuzz target: the checkpoint loader behind --resume and `runner sample`:
// checkpoint bytes → load_weights_for_sampling into a model shaped like the
// seed's (fixture_mean: one parameter "mu" of 2 values). No digest is recorded,
// as for runs written before digests, so every input reaches the deserialiser.
#include "fuzz_support.hpp"
#include "genfw/trainer.hpp"

namespace {

struct MeanModel : torch::nn::Module {
  MeanModel() { register_parameter("mu", torch::zeros({2})); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto file = genfw_fuzz::scratch_dir() / "checkpoint.pt";
  genfw_fuzz::write_bytes(file, data, size);
  genfw_fuzz::expect_clean([&] {
    MeanModel model;
    genfw::load_weights_for_sampling(model, genfw::RecordedCheckpoint{file.string(), "fuzz.h5", "", ""});
  });
  return 0;
}
