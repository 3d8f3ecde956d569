// `shardctl key protect|unprotect|change-passphrase|show`: switches the
// volume key file between the plain and the passphrase-protected format
// (lib/key_file.h, lib/passphrase.h). The key itself never changes, so
// nothing stored in the cluster is touched; only the file on this disk.
//
// The key file is --key-file, else volume.key_file of --config.
// The current passphrase comes from --passphrase-file, SHARDFS_PASSPHRASE_FILE,
// SHARDFS_PASSPHRASE or the terminal (GetPassphrase); the new one from
// --new-passphrase-file, SHARDFS_NEW_PASSPHRASE or the terminal, asked twice.
//
// Exit status: 0 done, 1 refused (wrong passphrase, already in that
// format), 2 other errors.
//
// Thread-safety: the action runs on the main thread.
#include <openssl/crypto.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "lib/client_config.h"
#include "lib/key_file.h"
#include "lib/passphrase.h"
#include "tools/commands.h"

namespace shardfs::shardctl {
namespace {

struct KeyArgs {
  std::string key_file;
  std::string passphrase_file;
  std::string new_passphrase_file;
  int log2_n = ScryptParams{}.log2_n;
};

enum class Op { kProtect, kUnprotect, kChange, kShow };

// Wipes a passphrase when the command ends.
struct Secret {
  std::string s;
  ~Secret() {
    if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
  }
};

int Fail(const Status& st, int code = 2) {
  std::fprintf(stderr, "shardctl key: %s\n", st.ToString().c_str());
  return code;
}

Result<std::string> KeyPath(const GlobalOptions& global, const KeyArgs& a) {
  if (!a.key_file.empty()) return a.key_file;
  if (global.config_path.empty()) {
    return Status::InvalidArgument("give --key-file FILE or --config CLIENT_CONF");
  }
  ASSIGN_OR_RETURN(ClientConfig cfg, LoadClientConfig(global.config_path));
  return cfg.key_file;
}

Result<std::string> NewPassphrase(const KeyArgs& a) {
  if (!a.new_passphrase_file.empty()) return ReadPassphraseFile(a.new_passphrase_file);
  if (const char* p = std::getenv("SHARDFS_NEW_PASSPHRASE"); p && *p) return std::string(p);
  return PromptPassphrase("New passphrase: ", true);
}

int Run(const GlobalOptions& global, const KeyArgs& a, Op op) {
  auto path = KeyPath(global, a);
  if (!path.ok()) return Fail(path.status());
  if (!a.passphrase_file.empty()) SetPassphraseFile(a.passphrase_file);
  auto prot = KeyFileIsProtected(*path);
  if (!prot.ok()) return Fail(prot.status());

  if (op == Op::kShow) {
    std::printf("%s: %s\n", path->c_str(),
                *prot ? "protected by a passphrase (scrypt, AES-256-GCM)" : "plain (not protected)");
    return 0;
  }
  if (op == Op::kProtect && *prot) {
    return Fail(Status::Exists(*path + " is already protected; use change-passphrase"), 1);
  }
  if (op != Op::kProtect && !*prot) {
    return Fail(Status::InvalidArgument(*path + " is not protected by a passphrase"), 1);
  }
  ScryptParams params;
  params.log2_n = a.log2_n;
  if (Status st = ValidateScryptParams(params); !st.ok()) return Fail(st);

  // LoadKeyFile asks for the current passphrase when the file has one.
  auto key = LoadKeyFile(*path);
  if (!key.ok()) return Fail(key.status(), key.status().code() == Code::kAuthFailed ? 1 : 2);
  struct WipeKey {
    Key* k;
    ~WipeKey() { OPENSSL_cleanse(k->data(), k->size()); }
  } wipe{&*key};

  Secret pass;
  if (op != Op::kUnprotect) {
    auto p = NewPassphrase(a);
    if (!p.ok()) return Fail(p.status());
    pass.s = std::move(*p);
  }
  if (Status st = ReplaceKeyFile(*path, *key, pass.s, params); !st.ok()) return Fail(st);
  // Prove the new file before saying so: the key it opens to is the old one.
  auto check = pass.s.empty() ? LoadKeyFileWithPassphrase(*path, "-")
                              : LoadKeyFileWithPassphrase(*path, pass.s);
  if (!check.ok() || *check != *key) {
    return Fail(Status::Corruption("the rewritten key file " + *path +
                                   " does not open to the same key: restore it from a backup"));
  }
  OPENSSL_cleanse(check->data(), check->size());
  const char* done = op == Op::kProtect     ? "now protected by a passphrase"
                     : op == Op::kUnprotect ? "no longer protected (plain key: keep it safe)"
                                            : "passphrase changed";
  std::printf("%s: %s\n", path->c_str(), done);
  return 0;
}

}  // namespace

void RegisterKeyCommands(CLI::App& app, GlobalOptions& global) {
  CLI::App* key = app.add_subcommand("key", "protect the volume key file with a passphrase");
  key->require_subcommand(1);
  auto args = std::make_shared<KeyArgs>();
  struct Sub {
    const char* name;
    const char* help;
    Op op;
  };
  const Sub subs[] = {
      {"protect", "seal the key file under a new passphrase", Op::kProtect},
      {"unprotect", "store the key file in plain again", Op::kUnprotect},
      {"change-passphrase", "re-seal the key file under a new passphrase", Op::kChange},
      {"show", "say whether the key file is protected", Op::kShow},
  };
  for (const Sub& s : subs) {
    CLI::App* sub = key->add_subcommand(s.name, s.help);
    sub->add_option("--key-file", args->key_file, "key file (default: volume.key_file of --config)");
    if (s.op != Op::kProtect) {
      sub->add_option("--passphrase-file", args->passphrase_file,
                      "file whose first line is the current passphrase");
    }
    if (s.op == Op::kProtect || s.op == Op::kChange) {
      sub->add_option("--new-passphrase-file", args->new_passphrase_file,
                      "file whose first line is the new passphrase");
      sub->add_option("--scrypt-log2-n", args->log2_n,
                      "scrypt cost: N = 2^this (default 17: 128 MiB, about half a second)")
          ->check(CLI::Range(10, 20));
    }
    const Op op = s.op;
    SetAction(sub, [&global, args, op] { return Run(global, *args, op); });
  }
}

}  // namespace shardfs::shardctl
