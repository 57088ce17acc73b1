// genfw::conv_transpose2d computes a transposed convolution with the
// convolution kernels; it must equal LibTorch's conv_transpose2d in value and
// in every gradient, and the module must be a drop-in torch::nn::ConvTranspose2d.
#include <gtest/gtest.h>

#include <genfw/conv.hpp>

namespace {

struct Case {
  int64_t in, out, kernel, stride, padding, output_padding, side;
  bool bias;
};

double largest_difference(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

}  // namespace

TEST(ConvTranspose, EqualsLibTorchInValueAndGradients) {
  torch::manual_seed(0);
  // DCGAN's first layer (1×1 → 4×4), its 2× up-sampling layers, an odd kernel with
  // output padding, and a non-square stride.
  for (const Case& c : {Case{6, 5, 4, 1, 0, 0, 1, false}, Case{6, 4, 4, 2, 1, 0, 7, false},
                        Case{4, 3, 4, 2, 1, 0, 5, true}, Case{3, 2, 3, 2, 1, 1, 6, true}}) {
    auto x = torch::randn({3, c.in, c.side, c.side + 1}, torch::kFloat32).requires_grad_();
    auto weight = torch::randn({c.out, c.in, c.kernel, c.kernel}).transpose(0, 1).contiguous().requires_grad_();
    auto bias = c.bias ? torch::randn({c.out}).requires_grad_() : torch::Tensor();
    std::vector<int64_t> stride{c.stride, c.stride}, padding{c.padding, c.padding},
        output_padding{c.output_padding, c.output_padding};
    auto ours = genfw::conv_transpose2d(x, weight, bias, stride, padding, output_padding);
    auto reference = torch::conv_transpose2d(x, weight, bias, stride, padding, output_padding);
    ASSERT_EQ(ours.sizes(), reference.sizes());
    EXPECT_LT(largest_difference(ours, reference), 1e-4 * (1 + reference.abs().max().item<double>()));

    auto upstream = torch::randn_like(reference);
    std::vector<torch::Tensor> inputs{x, weight};
    if (c.bias) inputs.push_back(bias);
    auto our_grads = torch::autograd::grad({(ours * upstream).sum()}, inputs);
    auto reference_grads = torch::autograd::grad({(reference * upstream).sum()}, inputs);
    for (size_t i = 0; i < inputs.size(); ++i) {
      double scale = 1 + reference_grads[i].abs().max().item<double>();
      EXPECT_LT(largest_difference(our_grads[i], reference_grads[i]), 1e-4 * scale)
          << "gradient " << i << " of case stride " << c.stride << " kernel " << c.kernel;
    }
  }
}

// Float64 is not on the convolution kernels' path: LibTorch's result, bit for bit.
TEST(ConvTranspose, OtherDtypesUseLibTorch) {
  torch::manual_seed(1);
  auto x = torch::randn({2, 3, 5, 5}, torch::kFloat64);
  auto weight = torch::randn({3, 2, 4, 4}, torch::kFloat64);
  EXPECT_TRUE(torch::equal(genfw::conv_transpose2d(x, weight, {}, {2, 2}, {1, 1}, {0, 0}),
                           torch::conv_transpose2d(x, weight, {}, {2, 2}, {1, 1}, {0, 0})));
}

TEST(ConvTranspose, ModuleIsADropInReplacement) {
  auto options = torch::nn::ConvTranspose2dOptions(4, 3, 4).stride(2).padding(1);
  torch::manual_seed(2);
  genfw::ConvTranspose2d ours(options);
  torch::manual_seed(2);
  torch::nn::ConvTranspose2d reference(options);
  auto ours_parameters = ours->named_parameters(), reference_parameters = reference->named_parameters();
  ASSERT_EQ(ours_parameters.keys(), reference_parameters.keys());
  for (const auto& key : ours_parameters.keys()) {
    EXPECT_TRUE(torch::equal(ours_parameters[key], reference_parameters[key])) << key;
  }
  std::shared_ptr<torch::nn::Module> as_module = ours.ptr();
  EXPECT_NE(as_module->as<torch::nn::ConvTranspose2d>(), nullptr);
  auto x = torch::randn({2, 4, 6, 6});
  torch::nn::Sequential sequential(ours);
  EXPECT_LT(largest_difference(sequential->forward(x), reference->forward(x)), 1e-5);
}
