// Corpus replay without libFuzzer: runs LLVMFuzzerTestOneInput over every
// file named on the command line (directories are walked, sorted). Lets a
// gcc build check the checked-in corpus (tests/fuzz/corpus/) as a plain
// regression test; the clang build links libFuzzer's own main instead.
//
// Files named seed_* are valid messages written from PROTOCOL.md by
// gen_seeds.py: each must decode in full, which keeps the document, the
// seeds and the codec in step.
//
// Exit status: 0 when every input ran, 1 if a file could not be read or a
// seed did not decode. A failed check inside the target aborts.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
namespace shardfs::fuzz {
// Defined by each target: whether the last input was accepted in full
// (wire: decoded; node: every request answered OK).
bool InputAccepted();
}

namespace {

bool RunFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "replay: cannot read %s\n", path.c_str());
    return false;
  }
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  if (path.filename().string().starts_with("seed_") && !shardfs::fuzz::InputAccepted()) {
    std::fprintf(stderr, "replay: seed %s is not accepted\n", path.c_str());
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::filesystem::path> files;
  for (int i = 1; i < argc; ++i) {
    std::error_code ec;
    if (std::filesystem::is_directory(argv[i], ec)) {
      for (const auto& e : std::filesystem::directory_iterator(argv[i], ec)) {
        if (e.is_regular_file()) files.push_back(e.path());
      }
    } else {
      files.emplace_back(argv[i]);
    }
  }
  // seed_* first: a stateful target (node) must meet its valid sessions
  // in a fresh store, before mutated inputs have claimed their shard ids.
  std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) {
    const bool sa = a.filename().string().starts_with("seed_");
    const bool sb = b.filename().string().starts_with("seed_");
    return sa != sb ? sa : a < b;
  });
  bool ok = true;
  for (const auto& f : files) ok = RunFile(f) && ok;
  std::printf("replay: %zu inputs\n", files.size());
  return ok && !files.empty() ? 0 : 1;
}
