#include "coordinator/coordinator_service.h"

#include <pthread.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "common/clock.h"
#include "common/error.h"
#include "coordinator/api_token.h"
#include "coordinator/http_api.h"
#include "coordinator/http_server.h"
#include "coordinator/metrics.h"

namespace tallrec {

std::filesystem::path served_file(const std::filesystem::path& relative,
                                  const std::filesystem::path& in_source_tree) {
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const auto installed = exe.parent_path().parent_path() / "share" / "tallrec" / relative;
    if (std::filesystem::exists(installed, ec)) return installed;
  }
  return in_source_tree;
}

namespace fs = std::filesystem;

struct CoordinatorService::Impl {
  CoordinatorOptions options;
  std::string token;
  bool token_created = false;
  CoordinatorMetrics metrics;
  Store broker_store;
  Broker broker;
  std::unique_ptr<Store>
      http_store;  // the HTTP thread's own connection: WAL readers never block the broker
  std::unique_ptr<HttpApi> api;
  std::unique_ptr<HttpServer> http;
  // WAL checkpoints happen here, on a connection of their own, never inside a broker commit.
  std::atomic<bool> closing{false};
  std::thread checkpointer;
  std::thread pool;  // the elastic Slurm pool's ticks, on a store connection of their own

  ~Impl() {
    closing = true;
    if (checkpointer.joinable()) checkpointer.join();
    if (pool.joinable()) pool.join();
  }

  explicit Impl(CoordinatorOptions o)
      : options(std::move(o)),
        broker_store(options.db),
        broker(broker_store, options.listen, options.artifacts, options.policy, options.curve) {
    broker.set_metrics(&metrics);
    broker_store.database.disable_auto_checkpoint();
    if (!options.trace.empty()) broker.trace_to(options.trace);
    if (options.http != "off") serve_http();
    // Last: a thread must not outlive a constructor that throws.
    if (options.slurm_pool) {
      std::string& connect = options.slurm_pool->job.coordinator;
      if (connect.empty()) {  // the endpoint as bound (a port 0 is a real port by now)
        connect = broker.endpoint();
        char host[256] = "localhost";
        ::gethostname(host, sizeof host);
        if (const size_t at = connect.find("//0.0.0.0:"); at != std::string::npos)
          connect.replace(at + 2, 7, host);
      }
      auto slurm = std::make_shared<SlurmPool>(*options.slurm_pool);  // checks its options first
      pool = std::thread([this, slurm] {
        pthread_setname_np(pthread_self(), "tallrec-pool");
        Store store(options.db);
        const auto interval = std::chrono::duration<double>(options.slurm_pool->interval_seconds);
        auto next = std::chrono::steady_clock::now();
        while (!closing) {
          if (std::chrono::steady_clock::now() >= next) {
            slurm->tick(store, unix_time());
            next = std::chrono::steady_clock::now() +
                   std::chrono::duration_cast<std::chrono::steady_clock::duration>(interval);
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
      });
    }
    checkpointer = std::thread([this] {
      pthread_setname_np(pthread_self(), "tallrec-wal");
      Store store(options.db);
      while (!closing) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        try {
          store.database.checkpoint_wal();
        } catch (const std::exception& e) {
          std::fprintf(stderr, "coordinator: %s\n", e.what());
        }
      }
    });
  }

  void serve_http() {
    const size_t colon = options.http.rfind(':');
    int port = -1;
    try {
      if (colon != std::string::npos) port = std::stoi(options.http.substr(colon + 1));
    } catch (const std::exception&) {
    }
    if (port < 0 || port > 65535)
      throw InputError("--http: \"" + options.http + "\" is not ADDRESS:PORT (or off)");
    token = load_or_create_api_token(options.token_file, &token_created);
    http_store = std::make_unique<Store>(options.db);
    api = std::make_unique<HttpApi>(*http_store,
                                    ApiOptions{token, options.reads_need_token, options.artifacts,
                                               options.web_root, options.chart_js, options.openapi},
                                    &metrics);
    http = std::make_unique<HttpServer>(*api, options.http.substr(0, colon),
                                        static_cast<unsigned short>(port));
  }
};

namespace {
CoordinatorOptions with_defaults(CoordinatorOptions o) {
  const fs::path beside = fs::absolute(o.db).parent_path();
  if (o.artifacts.empty()) o.artifacts = beside / "artifacts";
  if (o.token_file.empty()) o.token_file = beside / "api-token";
  return o;
}
}  // namespace

CoordinatorService::CoordinatorService(CoordinatorOptions options)
    : impl_(std::make_unique<Impl>(with_defaults(std::move(options)))) {}

CoordinatorService::~CoordinatorService() = default;

std::string CoordinatorService::zmq_endpoint() const { return impl_->broker.endpoint(); }

std::string CoordinatorService::http_url() const {
  if (!impl_->http) return "";
  const std::string host = impl_->options.http.substr(0, impl_->options.http.rfind(':'));
  return "http://" + host + ":" + std::to_string(impl_->http->port()) + "/";
}

const std::string& CoordinatorService::api_token() const { return impl_->token; }
bool CoordinatorService::api_token_created() const { return impl_->token_created; }
const CoordinatorOptions& CoordinatorService::options() const { return impl_->options; }

void CoordinatorService::serve(const std::atomic<bool>& stop) {
  pthread_setname_np(pthread_self(), "tallrec-broker");  // names show in top -H and perf
  impl_->broker.serve(stop);
}

}  // namespace tallrec
