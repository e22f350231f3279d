// A plain gRPC echo service with the callback API, built with omd's toolchain: the
// baseline for omd's listener in testing/versus_echo_bench.cc. gRPC's defaults
// throughout, one listening port; it writes the port's address to --address_file
// once it serves, and runs until SIGTERM or SIGINT.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <cstdio>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "config/atomic_file.h"
#include "tools/echo.grpc.pb.h"

ABSL_FLAG(std::string, address, "127.0.0.1:0", "Where to listen (port 0: any free port).");
ABSL_FLAG(std::string, address_file, "",
          "Written with the bound host:port once the server serves.");

namespace omd::bench {
namespace {

class EchoService final : public Echo::CallbackService {
  grpc::ServerUnaryReactor* Echo(grpc::CallbackServerContext* context,
                                 const EchoMessage* request, EchoMessage* reply) override {
    *reply = *request;
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

int Run() {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  // Blocked before gRPC starts its threads, so that only sigwait sees them.
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const std::string address = absl::GetFlag(FLAGS_address);
  const std::string host = address.substr(0, address.rfind(':'));
  EchoService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "echo_server: cannot listen on %s\n", address.c_str());
    return 1;
  }
  const std::string bound = absl::StrCat(host, ":", port);
  if (!absl::GetFlag(FLAGS_address_file).empty()) {
    absl::Status written =
        config::WriteFileAtomically(absl::GetFlag(FLAGS_address_file), bound + "\n", 0644);
    if (!written.ok()) {
      std::fprintf(stderr, "echo_server: %s\n", written.ToString().c_str());
      return 1;
    }
  }
  std::fprintf(stderr, "echo_server: serving on %s\n", bound.c_str());
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  server->Shutdown();
  return 0;
}

}  // namespace
}  // namespace omd::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "A plain gRPC echo service (omd.bench.Echo/Echo), the baseline of "
      "testing/versus_echo_bench.\nUsage: echo_server [--address=127.0.0.1:0] "
      "[--address_file=PATH]");
  absl::ParseCommandLine(argc, argv);
  return omd::bench::Run();
}
