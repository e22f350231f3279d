// What listing a full blacklist costs (BlacklistStatus's work before the reply is
// sealed): 4,095 member senders blocked, the capacity of the members' table.
//
//   bazel build -c opt //server:blacklist_benchmark && bazel-bin/server/blacklist_benchmark
#include <string>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "net/address.h"
#include "server/blacklist.h"

namespace omd::server {
namespace {

void BM_EntriesOfAFullBlacklist(benchmark::State& state) {
  Blacklist::Options options;
  Blacklist blacklist(options);
  const int senders = static_cast<int>(options.capacity) - 1;
  for (int i = 0; i < senders; ++i) {
    // 1,000 names from 5 member addresses, as in testing/versus_echo_bench.
    const Sender sender{absl::StrCat("node", i % 1000),
                        *net::IpAddress::Parse(absl::StrCat("127.0.0.", 2 + i / 1000))};
    for (uint32_t n = 0; n < options.threshold; ++n) blacklist.RecordInvalid(sender);
  }
  for (auto _ : state) benchmark::DoNotOptimize(blacklist.Entries());
}
BENCHMARK(BM_EntriesOfAFullBlacklist)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace omd::server

BENCHMARK_MAIN();
