// `tallrec keys`: a CURVE key pair for the coordinator or a worker (common/curve_keys.h).
#include <zmq.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "common/atomic_file.h"
#include "common/error.h"

namespace tallrec {

void add_keys_command(CLI::App& app) {
  struct Args {
    std::string out = "keys", name;
    bool force = false;
  };
  auto a = std::make_shared<Args>();
  auto* keys = app.add_subcommand(
      "keys", "Make a CURVE key pair: NAME.key (secret, mode 0600) and NAME.pub (to hand out)");
  keys->add_option("name", a->name, "Whose keys: \"coordinator\" or a worker's name")->required();
  keys->add_option("--out", a->out, "Folder for the key files")->capture_default_str();
  keys->add_flag("--force", a->force, "Replace existing key files");
  keys->footer(
      "The coordinator runs with --curve-key coordinator.key --worker-keys DIR, where DIR holds "
      "the\n"
      "workers' .pub files; each worker runs with --curve-key NAME.key --coordinator-key "
      "coordinator.pub.");
  keys->callback([a] {
    if (a->name.empty() || a->name.find('/') != std::string::npos || a->name[0] == '.')
      throw InputError("keys: name \"" + a->name + "\" must be a plain file name");
    const std::filesystem::path dir(a->out), key = dir / (a->name + ".key"),
                                             pub = dir / (a->name + ".pub");
    if (!a->force && (std::filesystem::exists(key) || std::filesystem::exists(pub)))
      throw InputError("keys: " + key.string() +
                       " or its .pub exists already (--force replaces them)");
    char public_key[41], secret_key[41];
    if (zmq_curve_keypair(public_key, secret_key) != 0)
      throw Error("keys: this libzmq cannot make CURVE keys");
    std::filesystem::create_directories(dir);
    write_file_atomically(
        key, nlohmann::json{{"public", public_key}, {"secret", secret_key}}.dump(2) + "\n", 0600);
    write_file_atomically(pub, std::string(public_key) + "\n");
    std::printf("%s (secret, mode 0600)\n%s (public): %s\n", key.c_str(), pub.c_str(), public_key);
  });
}

}  // namespace tallrec
