// Logging: syslog severities over spdlog, one process-wide logger.
//
// Foreground processes log to stderr; daemons call LogToSyslog() once they
// detach. Log an error once, where it is handled; below that, put context in
// the Status instead (STYLE.md §9). Debug lines cost one level check when off.
//
// Thread-safety: all functions may be called from any thread.
#pragma once

#ifndef SPDLOG_ACTIVE_LEVEL
#define SPDLOG_ACTIVE_LEVEL SPDLOG_LEVEL_DEBUG
#endif
#include <spdlog/spdlog.h>

#include <string_view>

namespace shardfs {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

// "debug", "info", "warning", "error"; false on anything else.
bool ParseLogLevel(std::string_view name, LogLevel* level);
// `program` prefixes every line ("shardfs-node[1234]").
void InitLogging(std::string_view program, LogLevel level);
void LogToSyslog(std::string_view program);

}  // namespace shardfs

#define LOG_DEBUG(...) SPDLOG_DEBUG(__VA_ARGS__)
#define LOG_INFO(...) ::spdlog::info(__VA_ARGS__)
#define LOG_WARN(...) ::spdlog::warn(__VA_ARGS__)
#define LOG_ERROR(...) ::spdlog::error(__VA_ARGS__)
