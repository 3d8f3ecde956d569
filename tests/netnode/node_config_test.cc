// Tests for netnode/node_config: sizes, the [node] section, validation.
#include "netnode/node_config.h"

#include <doctest/doctest.h>

#include <fstream>

#include "tests/netnode/temp_dir.h"

namespace shardfs {
namespace {

std::string Write(const testing::TempDir& dir, const std::string& text) {
  std::string path = dir.Sub("node.conf");
  std::ofstream(path) << text;
  return path;
}

TEST_SUITE("node_config") {
  TEST_CASE("byte sizes") {
    CHECK(*ParseByteSize("0") == 0);
    CHECK(*ParseByteSize("1048576") == 1048576);
    CHECK(*ParseByteSize("512K") == 512 * 1024);
    CHECK(*ParseByteSize("100m") == 100ull << 20);
    CHECK(*ParseByteSize("2G") == 2ull << 30);
    CHECK(*ParseByteSize("2GiB") == 2ull << 30);
    CHECK(*ParseByteSize("2GB") == 2ull << 30);
    CHECK(*ParseByteSize("1T") == 1ull << 40);
    for (const char* bad :
         {"", "G", "-1", "1.5G", "12X", "1 G", "99999999999999999999", "16777216T"}) {
      CAPTURE(bad);
      CHECK_FALSE(ParseByteSize(bad).ok());
    }
  }

  TEST_CASE("a full [node] section") {
    testing::TempDir dir;
    std::string path = Write(dir, R"(
[node]
data_dir = "data"            # relative to the file
listen = "tcp://127.0.0.1:7000"
advertise = "tcp://192.0.2.1:7000"
zone = "house-1"
capacity = "10G"
peers = ["tcp://127.0.0.1:7001", "tcp://127.0.0.1:7002"]
workers = 4
log_level = "debug"
)");
    NodeConfig cfg;
    REQUIRE(LoadNodeConfigFile(path, &cfg).ok());
    REQUIRE(FinishNodeConfig(&cfg).ok());
    CHECK(cfg.data_dir == dir.Sub("data"));
    CHECK(cfg.listen == "tcp://127.0.0.1:7000");
    CHECK(cfg.advertise == "tcp://192.0.2.1:7000");
    CHECK(cfg.zone == "house-1");
    CHECK(cfg.capacity_bytes == 10ull << 30);
    CHECK(cfg.peers.size() == 2);
    CHECK(cfg.workers == 4);
    CHECK(cfg.log_level == "debug");
  }

  TEST_CASE("integer capacity and defaults") {
    testing::TempDir dir;
    NodeConfig cfg;
    REQUIRE(
        LoadNodeConfigFile(Write(dir, "[node]\ndata_dir = \"/x\"\ncapacity = 12345\n"), &cfg).ok());
    REQUIRE(FinishNodeConfig(&cfg).ok());
    CHECK(cfg.capacity_bytes == 12345);
    CHECK(cfg.listen == "tcp://127.0.0.1:0");
    CHECK(cfg.zone == "default");
    CHECK(cfg.workers == 2);
  }

  TEST_CASE("bad files are refused with the key named") {
    testing::TempDir dir;
    struct Case {
      const char* text;
      const char* mentions;
    } cases[] = {
        {"[node]\ndata_dir = \n", "node.conf:"},  // syntax error with line number
        {"[node]\nzone = 5\n", "zone"},
        {"[node]\ncapacity = \"lots\"\n", "capacity"},
        {"[node]\ncapacity = -1\n", "capacity"},
        {"[node]\nworkers = 0\n", "workers"},
        {"[node]\npeers = \"tcp://x:1\"\n", "peers"},
        {"[node]\nzoen = \"typo\"\n", "zoen"},
        {"[volume]\nk = 4\n", "volume"},
        {"# nothing\n", "[node]"},
    };
    for (const Case& c : cases) {
      CAPTURE(c.text);
      NodeConfig cfg;
      Status st = LoadNodeConfigFile(Write(dir, c.text), &cfg);
      CHECK(st.code() == Code::kInvalidArgument);
      CHECK(st.message().find(c.mentions) != std::string::npos);
    }
    NodeConfig missing;
    CHECK_FALSE(LoadNodeConfigFile(dir.Sub("absent.conf"), &missing).ok());
  }

  TEST_CASE("validation after flags") {
    NodeConfig cfg;
    CHECK_FALSE(FinishNodeConfig(&cfg).ok());  // no data dir
    cfg.data_dir = "/tmp/x";
    CHECK(FinishNodeConfig(&cfg).ok());
    cfg.listen = "localhost:7000";
    CHECK_FALSE(FinishNodeConfig(&cfg).ok());
    cfg.listen = "tcp://127.0.0.1:0";
    cfg.log_level = "loud";
    CHECK_FALSE(FinishNodeConfig(&cfg).ok());
    cfg.log_level = "info";
    cfg.zone = "";
    CHECK_FALSE(FinishNodeConfig(&cfg).ok());
  }

}  // TEST_SUITE

}  // namespace
}  // namespace shardfs
