#include "jobs/train/events.h"

#include <chrono>
#include <cstring>
#include <iostream>

#include "common/error.h"

namespace tallrec {

EventLog::EventLog(const std::filesystem::path& file, bool echo)
    : file_(std::fopen(file.c_str(), "a")), echo_(echo) {
  if (!file_) throw Error(file.string() + ": cannot open for appending: " + std::strerror(errno));
}

EventLog::~EventLog() { std::fclose(file_); }

void EventLog::emit(const std::string& type, nlohmann::ordered_json fields) {
  nlohmann::ordered_json e = {
      {"type", type},
      {"time",
       std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count()}};
  for (auto& [k, v] : fields.items()) e[k] = v;
  // A reason may quote a garbled file's bytes: replaced, never thrown (the failed event must go
  // out).
  const std::string line =
      e.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
  std::fwrite(line.data(), 1, line.size(), file_);
  std::fflush(file_);
  if (echo_) std::cout << line << std::flush;
}

}  // namespace tallrec
