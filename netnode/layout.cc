// Data dir names. See layout.h and STORAGE.md §1.
#include "netnode/layout.h"

#include <charconv>
#include <utility>

#include "netnode/shard_file_format.h"

namespace shardfs {

std::string ShardKey::ToString() const { return DataLayout::ShardFileName(*this); }

DataLayout::DataLayout(std::string data_dir) : root_(std::move(data_dir)) {
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
}

std::string DataLayout::ShardDir(const StripeId& stripe) const {
  return ShardsDir() + "/" + stripe.Hex().substr(0, 2);
}

std::string DataLayout::ShardFileName(const ShardKey& key) {
  return key.stripe.Hex() + "." + std::to_string(key.index);
}

std::string DataLayout::ShardPath(const ShardKey& key) const {
  return ShardDir(key.stripe) + "/" + ShardFileName(key);
}

std::string DataLayout::TmpPath(const ShardKey& key, uint64_t seq) const {
  return TmpDir() + "/" + ShardFileName(key) + "." + std::to_string(seq) + ".tmp";
}

std::optional<ShardKey> DataLayout::ParseShardFileName(std::string_view name) {
  size_t dot = name.find('.');
  if (dot != 32) return std::nullopt;
  std::string_view hex = name.substr(0, 32);
  for (char c : hex) {
    // StripeId::FromHex accepts upper case too; our names never have it, and
    // a second spelling of one id must not count as another shard.
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
  }
  auto stripe = StripeId::FromHex(hex);
  if (!stripe) return std::nullopt;
  std::string_view num = name.substr(dot + 1);
  if (num.empty() || num.size() > 2 || (num.size() > 1 && num[0] == '0')) return std::nullopt;
  unsigned index = 0;
  auto [ptr, ec] = std::from_chars(num.data(), num.data() + num.size(), index);
  if (ec != std::errc() || ptr != num.data() + num.size()) return std::nullopt;
  if (index >= shardfile::kMaxIndex) return std::nullopt;
  return ShardKey{*stripe, static_cast<ShardIndex>(index)};
}

}  // namespace shardfs
