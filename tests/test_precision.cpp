// Mixed precision (genfw/precision.hpp): what autocast runs in bf16 and what
// in float32, the norms LibTorch 1.x's CPU autocast refuses, restoring the
// previous state, and a bf16 training step's loss and gradients against fp32.
#include "genfw/precision.hpp"
#include "support.hpp"

namespace {

struct Net : torch::nn::Module {
  torch::nn::Conv2d conv{torch::nn::Conv2dOptions(3, 8, 3).padding(1)};
  torch::nn::GroupNorm group_norm{torch::nn::GroupNormOptions(2, 8)};
  torch::nn::LayerNorm layer_norm{torch::nn::LayerNormOptions({8, 6, 6})};
  torch::nn::Linear linear{8 * 36, 4};
  Net() {
    register_module("conv", conv);
    register_module("group_norm", group_norm);
    register_module("layer_norm", layer_norm);
    register_module("linear", linear);
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto h = torch::silu(layer_norm(group_norm(conv(x))));
    return linear(h.flatten(1));
  }
};

}  // namespace

TEST(Precision, Bf16RunsConvolutionsInBf16AndNormsInFloat32) {
  torch::manual_seed(0);
  Net net;
  const auto x = torch::randn({4, 3, 6, 6});
  {
    genfw::AutocastScope autocast("bf16", torch::kCPU);
    const auto h = net.conv(x);
    EXPECT_EQ(h.scalar_type(), torch::kBFloat16);
    const auto normed = net.group_norm(h);  // without genfw's policy: refused by LibTorch 1.13, bf16 in 2.x
    EXPECT_EQ(normed.scalar_type(), torch::kFloat32);
    // Exactly the float32 norm of the bf16 values.
    EXPECT_TRUE(torch::allclose(normed, torch::group_norm(h.to(torch::kFloat32), 2, net.group_norm->weight,
                                                          net.group_norm->bias), 0, 1e-6));
    EXPECT_EQ(net.layer_norm(h).scalar_type(), torch::kFloat32);
    EXPECT_EQ(net.forward(x).scalar_type(), torch::kBFloat16);  // the last op, linear, runs in bf16
    {
      genfw::AutocastPause pause;
      EXPECT_EQ(net.conv(x).scalar_type(), torch::kFloat32);
    }
    EXPECT_EQ(net.conv(x).scalar_type(), torch::kBFloat16);
  }
  EXPECT_EQ(net.conv(x).scalar_type(), torch::kFloat32);  // off again after the scope
  genfw::AutocastScope off("fp32", torch::kCPU);
  EXPECT_EQ(net.conv(x).scalar_type(), torch::kFloat32);
  EXPECT_THROW(genfw::AutocastScope("fp16", torch::kCPU), genfw::Error);
}

// bf16 keeps 8 bits of mantissa: the loss and gradients of one step agree with
// float32 to about 2^-8 relative, and the gradients stay float32 like the weights.
TEST(Precision, Bf16StepMatchesFloat32WithinBf16Rounding) {
  torch::manual_seed(1);
  Net net;
  const auto x = torch::randn({16, 3, 6, 6}), target = torch::randn({16, 4});
  auto step = [&](const std::string& precision) {
    net.zero_grad();
    torch::Tensor loss;
    {
      genfw::AutocastScope autocast(precision, torch::kCPU);
      loss = torch::mse_loss(net.forward(x), target);
      genfw::AutocastPause pause;
      loss.backward();
    }
    std::vector<torch::Tensor> grads;
    for (const auto& p : net.parameters()) grads.push_back(p.grad().clone());
    return std::make_pair(loss.item<double>(), grads);
  };
  auto [loss32, grads32] = step("fp32");
  auto [loss16, grads16] = step("bf16");
  std::cerr << "loss fp32 " << loss32 << ", bf16 " << loss16 << "\n";
  EXPECT_NEAR(loss16, loss32, 2e-2 * loss32);
  EXPECT_NE(loss16, loss32);  // it did compute in bf16
  for (size_t i = 0; i < grads32.size(); ++i) {
    EXPECT_EQ(grads16[i].scalar_type(), torch::kFloat32);
    const double error = (grads16[i] - grads32[i]).norm().item<double>() / grads32[i].norm().item<double>();
    EXPECT_LT(error, 5e-2) << "parameter " << i;
  }
}

// "tf32" is a CUDA setting (tensor cores on float32); on the CPU it computes
// exactly what "fp32" does, in float32, and leaves autocast off.
TEST(Precision, Tf32OnTheCpuIsFloat32) {
  torch::manual_seed(2);
  Net net;
  const auto x = torch::randn({4, 3, 6, 6});
  torch::Tensor fp32, tf32;
  {
    genfw::AutocastScope scope("fp32", torch::kCPU);
    fp32 = net.forward(x);
  }
  {
    genfw::AutocastScope scope("tf32", torch::kCPU);
    tf32 = net.forward(x);
    EXPECT_EQ(net.conv(x).scalar_type(), torch::kFloat32);
  }
  EXPECT_TRUE(torch::equal(fp32, tf32));
  EXPECT_CONTAINS(test_support::error_of([] { genfw::AutocastScope("fp16", torch::kCPU); }), "expected fp32, tf32 or bf16");
}
