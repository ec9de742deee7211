#include "worker/gpus.h"

#include <cstdio>
#include <sstream>

#include "common/error.h"

namespace tallrec {
namespace {

std::vector<GpuInfo> nvidia_smi() {
  std::vector<GpuInfo> gpus;
  FILE* p = ::popen(
      "nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader,nounits 2>/dev/null",
      "r");
  if (!p) return gpus;
  char line[512];
  while (std::fgets(line, sizeof line, p)) {
    std::stringstream s(line);
    std::string index, name, mib;
    if (!std::getline(s, index, ',') || !std::getline(s, name, ',') || !std::getline(s, mib))
      continue;
    try {
      while (!name.empty() && name.front() == ' ') name.erase(0, 1);
      gpus.push_back({std::stoi(index), name, std::stoll(mib) * 1024 * 1024});
    } catch (const std::exception&) {
      // not a GPU line (nvidia-smi printed an error): ignore
    }
  }
  ::pclose(p);
  return gpus;
}

}  // namespace

std::vector<GpuInfo> select_gpus(const std::string& spec) {
  if (spec == "none") return {};
  const std::vector<GpuInfo> found = nvidia_smi();
  if (spec == "auto") return found;
  std::vector<GpuInfo> chosen;
  std::stringstream s(spec);
  for (std::string item; std::getline(s, item, ',');) {
    size_t used = 0;
    int index = -1;
    try {
      index = std::stoi(item, &used);
    } catch (const std::exception&) {
    }
    if (index < 0 || used != item.size())
      throw InputError("--gpus: \"" + item + "\" is not a GPU index (use auto, none or 0,1,...)");
    GpuInfo g{index, "?", 0};
    for (const auto& f : found)
      if (f.index == index) g = f;
    chosen.push_back(g);
  }
  return chosen;
}

nlohmann::json gpus_json(const std::vector<GpuInfo>& gpus) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& g : gpus)
    out.push_back({{"index", g.index}, {"name", g.name}, {"memory_bytes", g.memory_bytes}});
  return out;
}

std::string SlotResources::visible_devices() const {
  std::string v;
  for (const auto& g : gpus) v += (v.empty() ? "" : ",") + std::to_string(g.index);
  return v;
}

nlohmann::json SlotResources::overrides() const {
  if (gpus.empty()) return nlohmann::json::object();
  nlohmann::json o = {{"device", "cuda"}};
  if (gpus.size() > 1) o["world_size"] = gpus.size();
  return o;
}

std::vector<SlotResources> split_slots(const std::vector<GpuInfo>& gpus, int slots) {
  if (slots < 1) throw InputError("--slots must be at least 1");
  if (!gpus.empty() && gpus.size() % size_t(slots) != 0)
    throw InputError("--slots " + std::to_string(slots) + " does not divide the " +
                     std::to_string(gpus.size()) + " GPUs");
  std::vector<SlotResources> out(static_cast<size_t>(slots));
  const size_t per = gpus.size() / size_t(slots);
  for (size_t i = 0; i < gpus.size(); ++i) out[i / per].gpus.push_back(gpus[i]);
  return out;
}

}  // namespace tallrec
