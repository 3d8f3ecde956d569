// Tests for lib/passphrase and the protected key file format (key_file.h):
// seal/open round trips, wrong passphrases, altered lines, KDF parameter
// bounds, format versions, passphrase sources and the modes of rewritten
// key files. Small scrypt parameters keep them fast; one case measures the
// default cost and prints it.
#include "lib/passphrase.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "lib/key_file.h"
#include "tests/netnode/temp_dir.h"

namespace shardfs {
namespace {

const ScryptParams kFast{10, 8, 1};

using testing::TempDir;

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& content, mode_t mode = 0600) {
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << content;
  }
  REQUIRE(::chmod(path.c_str(), mode) == 0);
}

mode_t ModeOf(const std::string& path) {
  struct stat st;
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

Key TestKey() {
  Key k{};
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(i * 9 + 1);
  return k;
}

// Unsets the passphrase environment for one test and restores nothing: the
// unit test binary never relies on it elsewhere.
struct CleanEnv {
  CleanEnv() {
    ::unsetenv("SHARDFS_PASSPHRASE");
    ::unsetenv("SHARDFS_PASSPHRASE_FILE");
    SetPassphraseFile("");
  }
  ~CleanEnv() {
    ::unsetenv("SHARDFS_PASSPHRASE");
    ::unsetenv("SHARDFS_PASSPHRASE_FILE");
    SetPassphraseFile("");
  }
};

}  // namespace

TEST_SUITE("passphrase") {
  TEST_CASE("seal then open returns the key; the line has the documented shape") {
    auto line = SealKeyWithPassphrase(TestKey(), "correct horse", kFast);
    REQUIRE(line.ok());
    CHECK(line->starts_with("shardfs-key-v2 scrypt 10 8 1 "));
    CHECK(line->back() == '\n');
    CHECK(line->find(std::string(64, 'a')) == std::string::npos);
    auto key = OpenKeyWithPassphrase(*line, "correct horse");
    REQUIRE(key.ok());
    CHECK(*key == TestKey());
    // Salt and nonce are fresh: sealing twice gives two different lines.
    CHECK(*SealKeyWithPassphrase(TestKey(), "correct horse", kFast) != *line);
    auto params = ProtectedKeyParams(*line);
    REQUIRE(params.ok());
    CHECK(params->log2_n == 10);
  }

  TEST_CASE("a wrong passphrase is AuthFailed with a clear message") {
    auto line = SealKeyWithPassphrase(TestKey(), "correct horse", kFast);
    REQUIRE(line.ok());
    auto key = OpenKeyWithPassphrase(*line, "correct horsf");
    CHECK(key.status().code() == Code::kAuthFailed);
    CHECK(key.status().message().find("wrong passphrase") != std::string::npos);
    CHECK(OpenKeyWithPassphrase(*line, "").status().code() == Code::kAuthFailed);
    CHECK(SealKeyWithPassphrase(TestKey(), "", kFast).status().code() == Code::kInvalidArgument);
  }

  TEST_CASE("any altered field fails: parameters are bound by the tag") {
    auto sealed = SealKeyWithPassphrase(TestKey(), "pw", kFast);
    REQUIRE(sealed.ok());
    const std::string line = *sealed;
    // A lower r (cheaper KDF for an attacker's oracle) must not open.
    std::string r_changed = line;
    r_changed.replace(r_changed.find(" 10 8 1 "), 8, " 10 7 1 ");
    CHECK(OpenKeyWithPassphrase(r_changed, "pw").status().code() == Code::kAuthFailed);
    // Flip one hex digit in each of salt, nonce, sealed key.
    const size_t salt = line.find(" 10 8 1 ") + 8;
    const size_t nonce = salt + 33, ct = nonce + 25;
    for (size_t at : {salt, nonce, ct, ct + 70, line.size() - 2}) {
      CAPTURE(at);
      std::string bad = line;
      bad[at] = bad[at] == '0' ? '1' : '0';
      CHECK(OpenKeyWithPassphrase(bad, "pw").status().code() == Code::kAuthFailed);
    }
  }

  TEST_CASE("malformed lines and hostile parameters are refused before any work") {
    auto line = SealKeyWithPassphrase(TestKey(), "pw", kFast);
    REQUIRE(line.ok());
    const std::string good = *line;
    const std::string bad[] = {
        "shardfs-key-v2 ",
        "shardfs-key-v2 argon2 10 8 1 00 00 00",
        good.substr(0, good.size() - 3) + "\n",
        good.substr(0, good.size() - 1) + " extra\n",
        "shardfs-key-v2 scrypt x 8 1" + good.substr(good.find(" 10 8 1 ") + 7),
    };
    for (const auto& b : bad) {
      CAPTURE(b);
      CHECK(OpenKeyWithPassphrase(b, "pw").status().code() == Code::kCorruption);
    }
    // log2 N = 30 would want 128 GiB: refused without trying.
    std::string huge = good;
    huge.replace(huge.find(" 10 8 1 "), 8, " 30 8 1 ");
    CHECK(OpenKeyWithPassphrase(huge, "pw").status().code() == Code::kInvalidArgument);
    CHECK(!ValidateScryptParams({9, 8, 1}).ok());
    CHECK(!ValidateScryptParams({22, 32, 1}).ok());  // 16 GiB
    CHECK(ValidateScryptParams({}).ok());
  }

  TEST_CASE("protect, load, change, unprotect a key file; modes stay 0600") {
    CleanEnv env;
    TempDir dir;
    const std::string path = dir.Sub("volume.key");
    auto created = CreateKeyFile(path);
    REQUIRE(created.ok());
    CHECK(*KeyFileIsProtected(path) == false);

    REQUIRE(ReplaceKeyFile(path, *created, "first", kFast).ok());
    CHECK(ModeOf(path) == 0600);
    CHECK(*KeyFileIsProtected(path) == true);
    CHECK(ReadAll(path).starts_with("shardfs-key-v2 scrypt "));
    CHECK(!std::filesystem::exists(path + ".new"));
    auto loaded = LoadKeyFileWithPassphrase(path, "first");
    REQUIRE(loaded.ok());
    CHECK(*loaded == *created);
    auto wrong = LoadKeyFileWithPassphrase(path, "second");
    CHECK(wrong.status().code() == Code::kAuthFailed);
    CHECK(wrong.status().ToString().find(path) != std::string::npos);

    // The mode check applies to protected files too.
    REQUIRE(::chmod(path.c_str(), 0644) == 0);
    CHECK(LoadKeyFileWithPassphrase(path, "first").status().code() == Code::kPermissionDenied);
    REQUIRE(::chmod(path.c_str(), 0600) == 0);

    REQUIRE(ReplaceKeyFile(path, *created, "second", kFast).ok());
    CHECK(LoadKeyFileWithPassphrase(path, "first").status().code() == Code::kAuthFailed);
    CHECK(*LoadKeyFileWithPassphrase(path, "second") == *created);

    // A zero umask must not widen the rewritten file.
    mode_t old = ::umask(0);
    Status st = ReplaceKeyFile(path, *created, "", kFast);
    ::umask(old);
    REQUIRE(st.ok());
    CHECK(ModeOf(path) == 0600);
    CHECK(*KeyFileIsProtected(path) == false);
    CHECK(*LoadKeyFile(path) == *created);
  }

  TEST_CASE("a leftover temp file blocks a change instead of being clobbered") {
    TempDir dir;
    const std::string path = dir.Sub("volume.key");
    auto created = CreateKeyFile(path);
    REQUIRE(created.ok());
    WriteFile(path + ".new", "half");
    CHECK(ReplaceKeyFile(path, *created, "pw", kFast).code() == Code::kExists);
    CHECK(*LoadKeyFile(path) == *created);
  }

  TEST_CASE("LoadKeyFile takes the passphrase from a file or the environment") {
    CleanEnv env;
    TempDir dir;
    const std::string path = dir.Sub("volume.key");
    auto created = CreateKeyFile(path);
    REQUIRE(created.ok());
    REQUIRE(ReplaceKeyFile(path, *created, "from somewhere", kFast).ok());

    ::setenv("SHARDFS_PASSPHRASE", "from somewhere", 1);
    CHECK(*LoadKeyFile(path) == *created);
    ::setenv("SHARDFS_PASSPHRASE", "wrong", 1);
    CHECK(LoadKeyFile(path).status().code() == Code::kAuthFailed);

    // A file wins over the variable; its newline is not part of it.
    const std::string pfile = dir.Sub("pass");
    WriteFile(pfile, "from somewhere\n");
    ::setenv("SHARDFS_PASSPHRASE_FILE", pfile.c_str(), 1);
    CHECK(*LoadKeyFile(path) == *created);
    ::unsetenv("SHARDFS_PASSPHRASE_FILE");
    SetPassphraseFile(pfile);
    CHECK(*LoadKeyFile(path) == *created);
    SetPassphraseFile(dir.Sub("absent"));
    CHECK(LoadKeyFile(path).status().code() == Code::kNotFound);
    WriteFile(pfile, "\n");
    SetPassphraseFile(pfile);
    CHECK(LoadKeyFile(path).status().code() == Code::kInvalidArgument);
    SetPassphraseFile("");
    ::unsetenv("SHARDFS_PASSPHRASE");

    // No source and no terminal: a message saying how to give one.
    int tty = ::open("/dev/tty", O_RDWR | O_NOCTTY);
    if (tty >= 0) {
      ::close(tty);
    } else {
      auto none = LoadKeyFile(path);
      CHECK(none.status().code() == Code::kUnavailable);
      CHECK(none.status().message().find("SHARDFS_PASSPHRASE") != std::string::npos);
    }
    // A plain key never asks.
    REQUIRE(ReplaceKeyFile(path, *created, "", kFast).ok());
    CHECK(LoadKeyFile(path).ok());
  }

  TEST_CASE("format versions: v1 plain, v2 protected, newer refused as unsupported") {
    CleanEnv env;
    TempDir dir;
    const std::string path = dir.Sub("volume.key");
    WriteFile(path, "shardfs-key-v3 whatever comes next\n");
    auto r = LoadKeyFile(path);
    CHECK(r.status().code() == Code::kCorruption);
    CHECK(r.status().message().find("unsupported version") != std::string::npos);
    // A malformed v2 file is Corruption before any passphrase is asked for.
    WriteFile(path, "shardfs-key-v2 " + std::string(64, 'a') + "\n");
    CHECK(LoadKeyFile(path).status().code() == Code::kCorruption);
    CHECK(KeyFileIsProtected(path).status().code() == Code::kCorruption);
  }

  TEST_CASE("default KDF cost (printed, for SECURITY.md)") {
    const auto t0 = std::chrono::steady_clock::now();
    auto line = SealKeyWithPassphrase(TestKey(), "pw");
    const auto t1 = std::chrono::steady_clock::now();
    REQUIRE(line.ok());
    CHECK(line->starts_with("shardfs-key-v2 scrypt 17 8 1 "));
    auto key = OpenKeyWithPassphrase(*line, "pw");
    const auto t2 = std::chrono::steady_clock::now();
    REQUIRE(key.ok());
    using ms = std::chrono::milliseconds;
    MESSAGE("scrypt N=2^17 r=8 p=1: seal " << std::chrono::duration_cast<ms>(t1 - t0).count()
                                            << " ms, open "
                                            << std::chrono::duration_cast<ms>(t2 - t1).count()
                                            << " ms");
  }
}

}  // namespace shardfs
