// A plain driver for the fuzz targets where libFuzzer is not available (GCC):
// runs every corpus file, then N deterministic mutations of them (seeded),
// with libFuzzer's flags for the same meaning:
//   fuzz_<target> [-runs=N] [-seed=S] [-max_len=L] CORPUS_DIR_OR_FILE...
// No coverage guidance: it finds what random mutation of the seeds finds.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

namespace {

using Bytes = std::vector<uint8_t>;

Bytes read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// One of libFuzzer's basic mutations: flip a bit, set an interesting byte,
// insert, erase, duplicate a chunk, or splice in part of another input.
void mutate(Bytes& input, const std::vector<Bytes>& corpus, std::mt19937_64& rng, size_t max_len) {
  static const uint8_t interesting[] = {0, 1, 0x7f, 0x80, 0xff, '[', '{', '"', '\\', '.', '=', '\n', '#'};
  auto at = [&](size_t n) { return n == 0 ? 0 : size_t(rng() % n); };
  switch (rng() % 6) {
    case 0:
      if (!input.empty()) input[at(input.size())] ^= uint8_t(1u << (rng() % 8));
      break;
    case 1:
      if (!input.empty()) input[at(input.size())] = interesting[rng() % sizeof interesting];
      break;
    case 2:
      input.insert(input.begin() + at(input.size() + 1), size_t(1 + rng() % 8), interesting[rng() % sizeof interesting]);
      break;
    case 3:
      if (!input.empty()) {
        size_t from = at(input.size());
        input.erase(input.begin() + from, input.begin() + std::min(input.size(), from + 1 + at(16)));
      }
      break;
    case 4:
      if (!input.empty()) {
        size_t from = at(input.size()), length = 1 + at(std::min<size_t>(64, input.size() - from));
        Bytes chunk(input.begin() + from, input.begin() + from + length);
        input.insert(input.begin() + at(input.size() + 1), chunk.begin(), chunk.end());
      }
      break;
    default: {
      const Bytes& other = corpus[at(corpus.size())];
      if (other.empty()) break;
      size_t from = at(other.size()), length = 1 + at(other.size() - from);
      size_t to = at(input.size() + 1);
      input.erase(input.begin() + to, input.begin() + std::min(input.size(), to + length));
      input.insert(input.begin() + to, other.begin() + from, other.begin() + from + length);
    }
  }
  if (input.size() > max_len) input.resize(max_len);
}

}  // namespace

int main(int argc, char** argv) {
  long runs = 1000;
  uint64_t seed = 1;
  size_t max_len = 1 << 20;
  std::vector<Bytes> corpus;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("-runs=", 0) == 0) runs = std::stol(arg.substr(6));
    else if (arg.rfind("-seed=", 0) == 0) seed = std::stoull(arg.substr(6));
    else if (arg.rfind("-max_len=", 0) == 0) max_len = std::stoull(arg.substr(9));
    else if (arg.rfind("-", 0) == 0) continue;  // other libFuzzer flags mean nothing here
    else if (std::filesystem::is_directory(arg)) {
      std::vector<std::filesystem::path> files;
      for (const auto& entry : std::filesystem::directory_iterator(arg)) files.push_back(entry.path());
      std::sort(files.begin(), files.end());  // a fixed order: the same seed replays the same inputs
      for (const auto& file : files) corpus.push_back(read_file(file));
    } else {
      corpus.push_back(read_file(arg));
    }
  }
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  if (corpus.empty()) corpus.push_back({});
  for (const Bytes& input : corpus) LLVMFuzzerTestOneInput(input.data(), input.size());
  std::mt19937_64 rng(seed);
  for (long run = 0; run < runs; ++run) {
    Bytes input = corpus[rng() % corpus.size()];
    for (int k = 1 + int(rng() % 4); k > 0; --k) mutate(input, corpus, rng, max_len);
    LLVMFuzzerTestOneInput(input.data(), input.size());
  }
  std::cout << "replayed " << corpus.size() << " corpus inputs and " << runs << " mutations (seed " << seed
            << "): no finding\n";
  return 0;
}
