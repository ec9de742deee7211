// Training events as JSON lines (schemas/train_event.schema.json): one object per line on
// stdout (the worker agent relays them) and appended to OUT/events.jsonl.
// Types: started, progress, eval, checkpoint, finished, failed. Every event has "type" and "time".
#pragma once

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

namespace tallrec {

class EventLog {
 public:
  explicit EventLog(const std::filesystem::path& file);
  ~EventLog();
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;
  void emit(const std::string& type, nlohmann::ordered_json fields);

 private:
  FILE* file_;
};

}  // namespace tallrec
