#include "genfw/nn.hpp"

#include <cmath>

#include "genfw/error.hpp"

namespace genfw {

namespace {
torch::nn::AnyModule activation_module(const std::string& name) {
  if (name == "silu") return torch::nn::AnyModule(torch::nn::SiLU());
  if (name == "relu") return torch::nn::AnyModule(torch::nn::ReLU());
  if (name == "elu") return torch::nn::AnyModule(torch::nn::ELU());
  if (name == "softplus") return torch::nn::AnyModule(torch::nn::Softplus());
  if (name == "tanh") return torch::nn::AnyModule(torch::nn::Tanh());
  if (name == "leaky_relu") {
    return torch::nn::AnyModule(torch::nn::LeakyReLU(torch::nn::LeakyReLUOptions().negative_slope(0.2)));
  }
  throw Error("unknown activation '" + name + "'; expected silu, relu, elu, softplus, tanh or leaky_relu");
}
}  // namespace

torch::nn::Sequential make_mlp(int64_t in, int64_t hidden, int64_t out, int64_t layers,
                               const std::string& activation) {
  GENFW_CHECK(layers >= 0, "an MLP needs >= 0 hidden layers, got ", layers);
  torch::nn::Sequential net;
  int64_t width = in;
  for (int64_t i = 0; i < layers; ++i) {
    net->push_back(torch::nn::Linear(width, hidden));
    net->push_back(activation_module(activation));
    width = hidden;
  }
  net->push_back(torch::nn::Linear(width, out));
  return net;
}

torch::Tensor sinusoidal_embedding(const torch::Tensor& values, int64_t dim, double max_period) {
  return sinusoidal_embedding(values, dim, max_period, 0, false);
}

torch::Tensor sinusoidal_embedding(const torch::Tensor& values, int64_t dim, double max_period, int64_t freq_shift,
                                   bool cos_first) {
  int64_t half = dim / 2;
  GENFW_CHECK(half - freq_shift > 0, "sinusoidal_embedding: freq_shift ", freq_shift, " must be below dim/2 = ", half);
  auto options = values.options().dtype(torch::kFloat32);
  // The order of operations is diffusers' (−ln P · i, then / (half − shift)), so an
  // imported network sees bit-identical embeddings.
  auto frequencies = torch::exp(-std::log(max_period) * torch::arange(half, options) / double(half - freq_shift));
  auto args = values.to(torch::kFloat32).unsqueeze(1) * frequencies.unsqueeze(0);
  auto embedding = cos_first ? torch::cat({torch::cos(args), torch::sin(args)}, 1)
                             : torch::cat({torch::sin(args), torch::cos(args)}, 1);
  if (dim % 2 == 1) embedding = torch::nn::functional::pad(embedding, torch::nn::functional::PadFuncOptions({0, 1}));
  return embedding;
}

torch::Tensor activate(const torch::Tensor& x, const std::string& activation) {
  if (activation == "silu") return torch::silu(x);
  if (activation == "relu") return torch::relu(x);
  if (activation == "elu") return torch::elu(x);
  if (activation == "softplus") return torch::softplus(x);
  if (activation == "tanh") return torch::tanh(x);
  if (activation == "leaky_relu") return torch::leaky_relu(x, 0.2);
  throw Error("unknown activation '" + activation + "'");
}

}  // namespace genfw
