// Tests for lib/key_file: create/load round trip, never overwriting, mode
// checks (including a zero umask at creation) and malformed content.
#include "lib/key_file.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/netnode/temp_dir.h"

namespace shardfs {
namespace {

using testing::TempDir;

// Writes `content` with mode 0600 (what a careful hand-made file would have).
void WriteFile(const std::string& path, const std::string& content) {
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << content;
  }
  REQUIRE(::chmod(path.c_str(), 0600) == 0);
}

mode_t ModeOf(const std::string& path) {
  struct stat st;
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

const std::string kGoodHex(64, 'a');

}  // namespace

TEST_SUITE("key_file") {
  TEST_CASE("create then load returns the same key") {
    TempDir dir;
    std::string path = dir.Sub("volume.key");
    auto created = CreateKeyFile(path);
    REQUIRE_MESSAGE(created.ok(), created.status().ToString());
    auto loaded = LoadKeyFile(path);
    REQUIRE_MESSAGE(loaded.ok(), loaded.status().ToString());
    CHECK(*created == *loaded);
    CHECK(ModeOf(path) == 0600);
    CHECK(std::filesystem::file_size(path) == 15 + 64 + 1);

    // Two files get two different keys.
    auto other = CreateKeyFile(dir.Sub("other.key"));
    REQUIRE(other.ok());
    CHECK(*other != *created);
  }

  TEST_CASE("create refuses to overwrite") {
    TempDir dir;
    std::string path = dir.Sub("volume.key");
    auto first = CreateKeyFile(path);
    REQUIRE(first.ok());
    auto second = CreateKeyFile(path);
    CHECK(second.status().code() == Code::kExists);
    // The first key is untouched.
    auto loaded = LoadKeyFile(path);
    REQUIRE(loaded.ok());
    CHECK(*loaded == *first);
  }

  TEST_CASE("created mode is 0600 even with umask 0") {
    TempDir dir;
    std::string path = dir.Sub("volume.key");
    mode_t old = ::umask(0);
    auto created = CreateKeyFile(path);
    ::umask(old);
    REQUIRE(created.ok());
    CHECK(ModeOf(path) == 0600);
  }

  TEST_CASE("group- or world-accessible key files are refused") {
    TempDir dir;
    std::string path = dir.Sub("volume.key");
    REQUIRE(CreateKeyFile(path).ok());
    for (mode_t mode : {0644, 0640, 0604, 0660, 0601}) {
      CAPTURE(mode);
      REQUIRE(::chmod(path.c_str(), mode) == 0);
      auto loaded = LoadKeyFile(path);
      CHECK(loaded.status().code() == Code::kPermissionDenied);
      CHECK(loaded.status().message().find("chmod 600") != std::string::npos);
    }
    REQUIRE(::chmod(path.c_str(), 0400) == 0);
    CHECK(LoadKeyFile(path).ok());
  }

  TEST_CASE("malformed key files are Corruption") {
    TempDir dir;
    std::string path = dir.Sub("volume.key");
    const std::string bad[] = {
        "",
        "\n",
        "shardfs-key-v1 \n",
        "shardfs-key-v1 " + kGoodHex.substr(1) + "\n",
        "shardfs-key-v1 " + kGoodHex + "a\n",
        "shardfs-key-v1 " + kGoodHex.substr(1) + "g\n",
        "shardfs-key-v2 " + kGoodHex + "\n",
        "shardfs-key-v1  " + kGoodHex + "\n",
        "shardfs-key-v1 " + kGoodHex + "\n\n",
        "shardfs-key-v1 " + kGoodHex + "\nextra\n",
        std::string(4096, 'x'),
    };
    for (const auto& content : bad) {
      CAPTURE(content);
      WriteFile(path, content);
      CHECK(LoadKeyFile(path).status().code() == Code::kCorruption);
    }
  }

  TEST_CASE("well-formed hand-written key files load") {
    TempDir dir;
    std::string path = dir.Sub("volume.key");
    WriteFile(path, "shardfs-key-v1 " + kGoodHex + "\n");
    auto key = LoadKeyFile(path);
    REQUIRE(key.ok());
    CHECK((*key)[0] == 0xaa);
    CHECK((*key)[31] == 0xaa);
    // No trailing newline, uppercase hex.
    WriteFile(path, "shardfs-key-v1 " + std::string(64, 'F'));
    key = LoadKeyFile(path);
    REQUIRE(key.ok());
    CHECK((*key)[5] == 0xff);
  }

  TEST_CASE("missing key file is NotFound") {
    TempDir dir;
    CHECK(LoadKeyFile(dir.Sub("absent.key")).status().code() == Code::kNotFound);
    // Creating in a missing directory fails cleanly too.
    CHECK(!CreateKeyFile(dir.Sub("no/such/dir.key")).ok());
  }

  TEST_CASE("a directory is not a key file") {
    TempDir dir;
    std::string path = dir.Sub("d");
    REQUIRE(::mkdir(path.c_str(), 0700) == 0);
    CHECK(LoadKeyFile(path).status().code() == Code::kCorruption);
  }
}

}  // namespace shardfs
