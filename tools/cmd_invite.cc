// `shardctl invite`: print (or write) a join token for a node's network
// (SECURITY.md §2, man/shardctl.8.rst "invite").
//
// The token carries the network secret, so it is printed only on request:
// to stdout, or with --output to a new file of mode 0600 that a client
// config can name as cluster.network_file. The bootstrap endpoint is the
// node's running endpoint (DATA_DIR/endpoint) unless --endpoint is given;
// the node's public key comes from DATA_DIR/identity.
//
// Thread-safety: runs on the main thread only.
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "lib/client_identity.h"
#include "lib/curve_keys.h"
#include "tools/commands.h"

namespace shardfs::shardctl {
namespace {

struct InviteArgs {
  std::string data_dir;
  std::string network_file;
  std::string endpoint;
  std::string output;
};

int Fail(const std::string& msg) {
  std::fprintf(stderr, "shardctl invite: %s\n", msg.c_str());
  return 1;
}

int RunInvite(const InviteArgs& a) {
  if (a.data_dir.empty() == a.network_file.empty()) {
    return Fail("give exactly one of --dir NODE_DATA_DIR or --network-file FILE");
  }
  const std::string source = a.data_dir.empty() ? a.network_file : a.data_dir + "/network";
  auto token = LoadNetworkFile(source);
  if (!token.ok()) return Fail(token.status().ToString());
  if (!a.data_dir.empty()) {
    auto id = LoadClientIdentity(a.data_dir + "/identity");
    if (id.ok()) token->node_key = id->public_key;
    std::ifstream in(a.data_dir + "/endpoint");
    std::string ep;
    if (in >> ep) token->endpoint = ep;
  }
  if (!a.endpoint.empty()) token->endpoint = a.endpoint;
  if (token->endpoint.empty()) {
    return Fail("no bootstrap endpoint: the node is not running (no " + a.data_dir +
                "/endpoint); give --endpoint tcp://HOST:PORT");
  }
  if (!a.output.empty()) {
    Status st = WriteNetworkFile(a.output, *token);
    if (!st.ok()) return Fail(st.ToString());
    std::printf("wrote a join token for network %s to %s (mode 0600)\n",
                NetworkId(token->secret).c_str(), a.output.c_str());
    return 0;
  }
  std::printf("%s\n", EncodeJoinToken(*token).c_str());
  return 0;
}

}  // namespace

void RegisterInviteCommand(CLI::App& app, GlobalOptions& global) {
  (void)global;
  auto args = std::make_shared<InviteArgs>();
  CLI::App* sub = app.add_subcommand(
      "invite", "print a join token (network secret + bootstrap endpoint) for a node's network");
  sub->add_option("--dir", args->data_dir, "data dir of a node of the network");
  sub->add_option("--network-file", args->network_file,
                  "network file (e.g. a local cluster's network.token) instead of --dir");
  sub->add_option("--endpoint", args->endpoint,
                  "bootstrap endpoint to put in the token (default: the node's endpoint)");
  sub->add_option("-o,--output", args->output,
                  "write the token to this file (mode 0600) instead of printing it");
  SetAction(sub, [args] { return RunInvite(*args); });
}

}  // namespace shardfs::shardctl
