#include "genfw/ema.hpp"

namespace genfw {

Ema::Ema(torch::nn::Module& module, double decay) : parameters_(module.parameters()), decay_(decay) {
  torch::NoGradGuard no_grad;
  for (const auto& p : parameters_) shadow_.push_back(p.detach().clone());
}

void Ema::update() { update(decay_); }

void Ema::update(double decay) {
  // The parameter list is taken once (Module::parameters() walks every submodule, which
  // costs more than the update itself on deep models); the tensors stay the module's own
  // through to() and load(), which change their data in place.
  torch::NoGradGuard no_grad;
  at::_foreach_mul_(shadow_, decay);
  at::_foreach_add_(shadow_, parameters_, 1 - decay);
}

void Ema::copy_to(torch::nn::Module& module) const {
  torch::NoGradGuard no_grad;
  auto parameters = module.parameters();
  for (size_t i = 0; i < parameters.size(); ++i) parameters[i].copy_(shadow_[i]);
}

}  // namespace genfw
