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
  // `echo`: also print each event on stdout (rank 0); other ranks only keep their file.
  explicit EventLog(const std::filesystem::path& file, bool echo = true);
  ~EventLog();
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;
  void emit(const std::string& type, nlohmann::ordered_json fields);

 private:
  FILE* file_;
  bool echo_;
};

}  // namespace tallrec
