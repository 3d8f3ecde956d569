// Logging setup. See log.h.
#include "lib/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <syslog.h>
#include <unistd.h>

#include <string>

namespace shardfs {
namespace {

spdlog::level::level_enum ToSpd(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return spdlog::level::debug;
    case LogLevel::kInfo: return spdlog::level::info;
    case LogLevel::kWarning: return spdlog::level::warn;
    case LogLevel::kError: return spdlog::level::err;
  }
  return spdlog::level::info;
}

}  // namespace

bool ParseLogLevel(std::string_view name, LogLevel* level) {
  if (name == "debug") *level = LogLevel::kDebug;
  else if (name == "info") *level = LogLevel::kInfo;
  else if (name == "warning" || name == "warn") *level = LogLevel::kWarning;
  else if (name == "error") *level = LogLevel::kError;
  else return false;
  return true;
}

void InitLogging(std::string_view program, LogLevel level) {
  auto logger = spdlog::stderr_logger_mt(std::string(program) + "-stderr");
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e " + std::string(program) + "[" +
                      std::to_string(getpid()) + "] %l: %v");
  logger->set_level(ToSpd(level));
  logger->flush_on(spdlog::level::debug);
  spdlog::set_default_logger(logger);
}

void LogToSyslog(std::string_view program) {
  auto level = spdlog::default_logger()->level();
  auto logger = spdlog::syslog_logger_mt(std::string(program) + "-syslog",
                                         std::string(program), LOG_PID);
  logger->set_level(level);
  spdlog::set_default_logger(logger);
}

}  // namespace shardfs
