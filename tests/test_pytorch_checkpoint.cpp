// genfw/pytorch_checkpoint.hpp: torch.save() files read as data. The NCSN fixtures
// were written by PyTorch itself (plugins/model/ncsn/ncsn_reference.py); the
// damaged and unusual ones by tests/torch_save_writer.hpp.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "genfw/error.hpp"
#include "genfw/pytorch_checkpoint.hpp"
#include "support.hpp"
#include "torch_save_writer.hpp"

namespace {

using test_support::error_of;
using test_support::PickleWriter;
using Type = genfw::PickleValue::Type;

std::string ncsn_fixture(const std::string& name) {
  return std::string(GENFW_TEST_SOURCE_DIR) + "/plugins/model/ncsn/ncsn_fixtures/" + name + "/checkpoint.pth";
}

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// anneal_runner.py's [DataParallel state_dict, Adam state_dict] after one step, as PyTorch wrote it.
TEST(PytorchCheckpoint, ReadsAnAnnealRunnerCheckpointWrittenByPytorch) {
  const auto root = genfw::read_pytorch_checkpoint(ncsn_fixture("mnist_like"));
  ASSERT_EQ(root->type, Type::list);
  ASSERT_EQ(root->items.size(), 2u);
  const auto weights = genfw::state_dict_tensors(*root->items[0], "fixture", "the first element");
  EXPECT_EQ(weights.at("module.begin_conv.weight").sizes(), (std::vector<int64_t>{4, 1, 3, 3}));
  EXPECT_EQ(weights.at("module.normalizer.embed.weight").sizes(), (std::vector<int64_t>{10, 12}));
  for (const auto& [name, tensor] : weights) EXPECT_EQ(tensor.scalar_type(), torch::kFloat) << name;

  const auto& optimizer = *root->items[1];
  ASSERT_EQ(optimizer.type, Type::dict);
  const auto groups = optimizer.find("param_groups");
  ASSERT_TRUE(groups && groups->type == Type::list && groups->items.size() == 1);
  const auto& group = *groups->items[0];
  EXPECT_DOUBLE_EQ(group.find("lr")->real, 0.001);
  EXPECT_EQ(group.find("amsgrad")->type, Type::boolean);
  EXPECT_FALSE(group.find("amsgrad")->flag);
  const auto betas = group.find("betas");
  ASSERT_EQ(betas->type, Type::tuple);
  EXPECT_DOUBLE_EQ(betas->items[1]->real, 0.999);
  const auto params = group.find("params");
  ASSERT_EQ(params->items.size(), weights.size());  // one index per parameter, in the state dict's order
  // Adam's state after one step of gradient 1e-3: m = (1 − β1)·g, v = (1 − β2)·g², per parameter.
  const auto state = optimizer.find("state");
  ASSERT_EQ(state->entries.size(), weights.size());
  const auto& first = *state->entries[0].second;
  EXPECT_NEAR(first.find("exp_avg")->tensor.mean().item<double>(), 0.1 * 1e-3, 1e-9);
  EXPECT_NEAR(first.find("exp_avg_sq")->tensor.mean().item<double>(), 0.001 * 1e-6, 1e-13);
}

TEST(PytorchCheckpoint, ViewsOfOneStorageAndOrderedDictMetadata) {
  PickleWriter pickle;
  pickle.empty_ordered_dict().op('(');
  pickle.string("whole").tensor("0", 6, 0, {2, 3}, {3, 1});
  pickle.string("column").tensor("0", 6, 1, {2}, {3});  // elements 1 and 4
  pickle.string("empty").tensor("0", 6, 6, {0, 3}, {3, 1});
  pickle.op('u');
  pickle.op('}').string("_metadata").empty_ordered_dict().op('s').op('b');  // BUILD: the OrderedDict's __dict__
  const auto storage = torch::arange(6, torch::kFloat);
  const auto root = genfw::parse_pytorch_checkpoint(test_support::torch_save_zip(pickle.finish(), {{"0", storage}}), "t");
  const auto tensors = genfw::state_dict_tensors(*root, "t", "the object");
  EXPECT_TRUE(torch::equal(tensors.at("whole"), storage.reshape({2, 3})));
  EXPECT_TRUE(torch::equal(tensors.at("column"), torch::tensor({1.0f, 4.0f})));
  EXPECT_EQ(tensors.at("empty").sizes(), (std::vector<int64_t>{0, 3}));
  // Copies: changing one tensor leaves the other views alone.
  tensors.at("whole").zero_();
  EXPECT_EQ(tensors.at("column")[1].item<float>(), 4.0f);
}

TEST(PytorchCheckpoint, ClassesItDoesNotKnowStayInertAndNamed) {
  PickleWriter pickle;
  pickle.op('}').string("weight").global("os", "system").op('(').string("touch /tmp/genfw-pwned").op('t').op('R');
  pickle.op('s');
  const auto root = genfw::parse_pytorch_checkpoint(test_support::torch_save_zip(pickle.finish(), {}), "evil.pth");
  EXPECT_EQ(root->find("weight")->type, Type::opaque);
  const auto error = error_of([&] { genfw::state_dict_tensors(*root, "evil.pth", "the saved object"); });
  EXPECT_NE(error.find("evil.pth: the saved object['weight'] is an object of os.system, expected a tensor"),
            std::string::npos) << error;
}

TEST(PytorchCheckpoint, RefusesDamageNamingTheFile) {
  const auto storage = torch::arange(6, torch::kFloat);
  auto parse = [&](PickleWriter pickle, std::map<std::string, torch::Tensor> storages) {
    return error_of([&] { genfw::parse_pytorch_checkpoint(test_support::torch_save_zip(pickle.finish(), storages), "d.pth"); });
  };
  PickleWriter past_end;
  past_end.tensor("0", 6, 2, {2, 3}, {3, 1});
  EXPECT_NE(parse(past_end, {{"0", storage}}).find("d.pth: data.pkl is damaged at byte"), std::string::npos);
  EXPECT_NE(parse(past_end, {{"0", storage}}).find("reads past the end of its storage of 6 elements"), std::string::npos);
  PickleWriter wrong_numel;
  wrong_numel.tensor("0", 7, 0, {6}, {1});
  EXPECT_NE(parse(wrong_numel, {{"0", storage}}).find("storage '0' holds 24 bytes, its pickle says 7 elements"),
            std::string::npos);
  PickleWriter no_record;
  no_record.tensor("9", 6, 0, {6}, {1});
  EXPECT_NE(parse(no_record, {}).find("has no record data/9"), std::string::npos);
  PickleWriter bad_memo;
  bad_memo.op('h').raw("\x05");
  EXPECT_NE(parse(bad_memo, {}).find("a memo reference to entry 5, never stored"), std::string::npos);
  PickleWriter unknown_opcode;
  unknown_opcode.op('\xff');
  EXPECT_NE(parse(unknown_opcode, {}).find("opcode 0xff, not one torch.save writes"), std::string::npos);
  PickleWriter deep;
  for (int i = 0; i < 1100; ++i) deep.op(']');
  for (int i = 0; i < 1099; ++i) deep.op('a');
  EXPECT_NE(parse(deep, {}).find("nested deeper than 1000 levels"), std::string::npos);

  const auto legacy = error_of([] { genfw::parse_pytorch_checkpoint(std::string("\x80\x02\x8a\x0a", 4), "old.pth"); });
  EXPECT_NE(legacy.find("old.pth: a checkpoint in PyTorch's pre-1.6 format"), std::string::npos) << legacy;
  EXPECT_NE(legacy.find("weights_only=True"), std::string::npos);
  EXPECT_NE(error_of([] { genfw::parse_pytorch_checkpoint("PK not really a zip", "z.pth"); })
                .find("z.pth: not a readable torch.save() zip file"),
            std::string::npos);
  EXPECT_NE(error_of([] { genfw::read_pytorch_checkpoint("/nonexistent/c.pth"); }).find("/nonexistent/c.pth: cannot open"),
            std::string::npos);
}

// Every cut of a real checkpoint, and single bytes changed anywhere: a genfw::Error naming the
// file, or (a change in padding or an unused value) a checkpoint read; never a crash.
TEST(PytorchCheckpoint, CutsAndFlippedBytesEndInAnErrorNamingTheFile) {
  const std::string bytes = file_bytes(ncsn_fixture("cifar_like"));
  for (size_t cut = 0; cut < bytes.size(); cut += bytes.size() / 97 + 1) {
    const auto error = error_of([&] { genfw::parse_pytorch_checkpoint(bytes.substr(0, cut), "cut.pth"); });
    EXPECT_EQ(error.rfind("cut.pth", 0), 0u) << "cut at " << cut << ": " << error;
  }
  std::mt19937 random(7);
  for (int i = 0; i < 200; ++i) {
    std::string changed = bytes;
    const size_t at = random() % changed.size();
    changed[at] = char(changed[at] ^ (1 + random() % 255));
    try {
      genfw::parse_pytorch_checkpoint(changed, "flip.pth");
    } catch (const genfw::Error& e) {
      EXPECT_EQ(std::string(e.what()).rfind("flip.pth", 0), 0u) << "byte " << at << ": " << e.what();
    }
  }
}

}  // namespace
