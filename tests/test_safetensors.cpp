// The safetensors reader (genfw/safetensors.hpp): what it reads back, and that a
// damaged file of any kind is refused naming the file and the tensor, never read
// outside its bytes (run under ASan by the fuzz build: fuzz/safetensors.cpp).
#include <gtest/gtest.h>

#include <cstring>

#include "genfw/json.hpp"
#include "genfw/safetensors.hpp"
#include "support.hpp"

namespace {

using test_support::error_of;

std::string with_header(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);  // little-endian hosts only, as the reader checks
  return out + header + data;
}

TEST(Safetensors, RoundTripsEveryDtypeAndTheMetadata) {
  std::map<std::string, torch::Tensor> tensors{
      {"f32", torch::randn({2, 3})},
      {"f64", torch::randn({4}, torch::kFloat64)},
      {"f16", torch::randn({3, 1, 2}).to(torch::kFloat16)},
      {"bf16", torch::randn({5}).to(torch::kBFloat16)},
      {"i64", torch::arange(6, torch::kLong).reshape({2, 3})},
      {"scalar", torch::tensor(1.5f)},
      {"empty", torch::zeros({0, 4})}};
  const auto file = genfw::parse_safetensors(genfw::safetensors_bytes(tensors, {{"format", "pt"}}), "mem");
  ASSERT_EQ(file.tensors.size(), tensors.size());
  EXPECT_EQ(file.metadata.at("format"), "pt");
  for (const auto& [name, tensor] : tensors) {
    const auto& read = file.tensors.at(name);
    EXPECT_EQ(read.scalar_type(), tensor.scalar_type()) << name;
    EXPECT_EQ(read.sizes(), tensor.sizes()) << name;
    EXPECT_TRUE(torch::equal(read, tensor)) << name;
  }
}

TEST(Safetensors, ReadsTheLibrarysLayoutOfAFileDiffusersWrote) {
  // unet weights written by the safetensors Python library (diffusers_reference.py).
  const auto file = genfw::read_safetensors(std::string(GENFW_TEST_SOURCE_DIR) +
                                            "/plugins/model/ddpm_unet/diffusers_fixtures/gray_variant/unet/"
                                            "diffusion_pytorch_model.safetensors");
  EXPECT_EQ(file.tensors.at("conv_in.weight").sizes(), (std::vector<int64_t>{8, 1, 3, 3}));
  EXPECT_EQ(file.tensors.at("conv_in.weight").scalar_type(), torch::kFloat32);
}

TEST(Safetensors, RefusesTruncatedAndOversizedHeaders) {
  const std::string good = genfw::safetensors_bytes({{"w", torch::ones({4})}});
  EXPECT_NE(error_of([] { genfw::parse_safetensors("", "f.safetensors"); }).find("f.safetensors: not a safetensors file: 0 bytes"),
            std::string::npos);
  for (size_t cut = 0; cut < good.size(); ++cut) {  // every truncation is an error, never a crash
    EXPECT_THROW(genfw::parse_safetensors(good.substr(0, cut), "f"), genfw::Error) << "cut at " << cut;
  }
  std::string huge = good;
  const uint64_t n = ~uint64_t(0) - 3;  // 8 + n overflows
  std::memcpy(huge.data(), &n, 8);
  EXPECT_NE(error_of([&] { genfw::parse_safetensors(huge, "f"); }).find("header length"), std::string::npos);
  EXPECT_NE(error_of([&] { genfw::parse_safetensors(with_header("{\"a\":", ""), "f"); }).find("malformed JSON"),
            std::string::npos);
  EXPECT_NE(error_of([&] { genfw::parse_safetensors(with_header("[1]", ""), "f"); }).find("not a JSON object"),
            std::string::npos);
}

TEST(Safetensors, RefusesEntriesThatDoNotFitTheirData) {
  const std::string data(16, '\0');
  auto error = [&](const std::string& entry) {
    return error_of([&] { genfw::parse_safetensors(with_header("{\"w\":" + entry + "}", data), "f.st"); });
  };
  EXPECT_NE(error(R"({"dtype":"F32","shape":[4],"data_offsets":[0,32]})").find("f.st: tensor 'w': data_offsets [0, 32] lie outside"),
            std::string::npos);
  EXPECT_NE(error(R"({"dtype":"F32","shape":[5],"data_offsets":[0,16]})").find("tensor 'w': shape [5] of F32 needs 5 × 4 bytes"),
            std::string::npos);
  EXPECT_NE(error(R"({"dtype":"F32","shape":[2],"data_offsets":[8,16]})").find("leaving a hole"), std::string::npos);
  EXPECT_NE(error(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})").find("the tensors end at data byte 8"),
            std::string::npos);
  EXPECT_NE(error(R"({"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,16]})").find("overflows"),
            std::string::npos);
  EXPECT_NE(error(R"({"dtype":"F32","shape":[-4],"data_offsets":[0,16]})").find("negative"), std::string::npos);
  EXPECT_NE(error_of([&] {
              genfw::parse_safetensors(
                  with_header(R"({"w":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904,0],"data_offsets":[0,0]}})", ""),
                  "f.st");
            }).find("overflows"),
            std::string::npos);
  EXPECT_NE(error(R"({"dtype":"C64","shape":[2],"data_offsets":[0,16]})").find("dtype \"C64\" is not read"),
            std::string::npos);
  EXPECT_NE(error(R"({"dtype":"F32","shape":[4],"data_offsets":[16,0]})").find("lie outside"), std::string::npos);
  EXPECT_NE(error(R"({"shape":[4],"data_offsets":[0,16]})").find("no \"dtype\""), std::string::npos);
  EXPECT_NE(error("3").find("not an object"), std::string::npos);
  // Two tensors over one range: aliasing is damage, as the safetensors library says.
  const std::string two = R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})";
  EXPECT_NE(error_of([&] { genfw::parse_safetensors(with_header(two, data), "f"); }).find("overlapping"), std::string::npos);
}

TEST(Safetensors, RefusesAMissingFileNamingIt) {
  EXPECT_NE(error_of([] { genfw::read_safetensors("/nonexistent/w.safetensors"); }).find("/nonexistent/w.safetensors"),
            std::string::npos);
}

TEST(Json, ReadsWhatConfigsHoldAndLimitsNesting) {
  const auto j = genfw::parse_json(R"({"a": [1, -2.5e-1, true, null, "x\u00e9\"y"], "b": {"c": 10000000000}})", "c.json");
  ASSERT_EQ(j.find("a")->array.size(), 5u);
  EXPECT_TRUE(j.find("a")->array[0].integral);
  EXPECT_DOUBLE_EQ(j.find("a")->array[1].number, -0.25);
  EXPECT_TRUE(j.find("a")->array[2].boolean);
  EXPECT_TRUE(j.find("a")->array[3].is_null());
  EXPECT_EQ(j.find("a")->array[4].string, "x\xc3\xa9\"y");
  EXPECT_EQ(j.find("b")->find("c")->integer, 10000000000);
  EXPECT_NE(error_of([] { genfw::parse_json(std::string(100000, '['), "deep.json"); }).find("deep.json: malformed JSON at byte 65: nested deeper"),
            std::string::npos);
  EXPECT_THROW(genfw::parse_json("{\"a\": 1,}", "j"), genfw::Error);
  EXPECT_THROW(genfw::parse_json("01", "j"), genfw::Error);
  EXPECT_THROW(genfw::parse_json("\"\\ud800\"", "j"), genfw::Error);
}

}  // namespace
