// Cross-entropy of a time-conditioned classifier on x_t = √ᾱ_t x + √(1−ᾱ_t) ε at
// t ~ U{0..T−1} (Dhariwal & Nichol 2021, §4: the classifier used for guidance is
// trained on noised images). The schedule is the classifier model's own.
#include <genfw/sdk.hpp>

namespace {

class NoisyClassifierObjective : public genfw::LossObjective {
 public:
  static genfw::Schema schema() { return genfw::Schema(); }
  NoisyClassifierObjective(const genfw::Options&, const genfw::BuildContext&) {}

  torch::Tensor loss(genfw::Model& model, const genfw::Batch& batch) override {
    auto* net = genfw::as<genfw::NoisyClassifier>(model);
    GENFW_CHECK(net != nullptr, "objective 'noisy_classifier' needs capability 'classifier'");
    GENFW_CHECK(batch.y.defined(), "objective 'noisy_classifier' needs labelled data (Batch::y)");
    const auto& schedule = net->schedule();
    const auto& x = batch.x;
    auto t = torch::randint(0, schedule.num_steps(), {x.size(0)},
                            torch::TensorOptions().dtype(torch::kLong).device(x.device()));
    auto alpha_bar = genfw::alpha_bar_at(schedule, t, x);
    auto noise = torch::randn_like(x);
    auto x_t = genfw::per_sample(alpha_bar.sqrt(), x) * x +
               genfw::per_sample((1 - alpha_bar).sqrt(), x) * noise;
    return torch::nn::functional::cross_entropy(net->classify(x_t, t),
                                                batch.y.to(x.device(), torch::kLong));
  }
};

}  // namespace

GENFW_PLUGIN(manifest) {
  manifest
      .add<NoisyClassifierObjective>("noisy_classifier", genfw::Kind::objective,
                                     "cross-entropy of p(y | x_t, t) on noised inputs "
                                     "(Dhariwal & Nichol 2021)")
      .require(genfw::Capability::classifier);
}
