// The source filter on real sockets: the kernel drops a listed source's SYNs, so
// its connect() never completes, while everyone else connects.
#include "net/source_filter.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "net/listen_socket.h"

namespace omd::net {
namespace {

IpAddress Ip(const char* text) { return IpAddress::Parse(text).value(); }

// Whether a connection from `source` to the listener completes within `wait`.
bool Connects(const std::string& source, const std::string& listener, int port,
              absl::Duration wait = absl::Milliseconds(300)) {
  const bool v6 = listener.find(':') != std::string::npos;
  const int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_storage from{}, to{};
  socklen_t length;
  if (v6) {
    auto* f = reinterpret_cast<sockaddr_in6*>(&from);
    auto* t = reinterpret_cast<sockaddr_in6*>(&to);
    f->sin6_family = t->sin6_family = AF_INET6;
    inet_pton(AF_INET6, source.c_str(), &f->sin6_addr);
    inet_pton(AF_INET6, listener.c_str(), &t->sin6_addr);
    t->sin6_port = htons(static_cast<uint16_t>(port));
    length = sizeof(sockaddr_in6);
  } else {
    auto* f = reinterpret_cast<sockaddr_in*>(&from);
    auto* t = reinterpret_cast<sockaddr_in*>(&to);
    f->sin_family = t->sin_family = AF_INET;
    inet_pton(AF_INET, source.c_str(), &f->sin_addr);
    inet_pton(AF_INET, listener.c_str(), &t->sin_addr);
    t->sin_port = htons(static_cast<uint16_t>(port));
    length = sizeof(sockaddr_in);
  }
  bind(fd, reinterpret_cast<sockaddr*>(&from), length);
  connect(fd, reinterpret_cast<sockaddr*>(&to), length);
  pollfd poll_fd{fd, POLLOUT, 0};
  int error = -1;
  socklen_t error_length = sizeof(error);
  const bool ready = poll(&poll_fd, 1, static_cast<int>(absl::ToInt64Milliseconds(wait))) == 1;
  if (ready) getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &error_length);
  close(fd);
  return ready && error == 0;
}

TEST(SourceFilterTest, TheKernelDropsListedIpv4Sources) {
  ListenSocket listener = Listen("127.0.0.1", 0).value();
  absl::Status attached = AttachSourceFilter(listener.fd, {Ip("127.0.0.66"), Ip("127.0.0.68")});
  ASSERT_TRUE(attached.ok()) << attached;
  EXPECT_FALSE(Connects("127.0.0.66", "127.0.0.1", listener.port));
  EXPECT_TRUE(Connects("127.0.0.67", "127.0.0.1", listener.port));
  EXPECT_FALSE(Connects("127.0.0.68", "127.0.0.1", listener.port));
  // Replaced by a shorter list, then removed.
  ASSERT_TRUE(AttachSourceFilter(listener.fd, {Ip("127.0.0.68")}).ok());
  EXPECT_TRUE(Connects("127.0.0.66", "127.0.0.1", listener.port));
  ASSERT_TRUE(AttachSourceFilter(listener.fd, {}).ok());
  EXPECT_TRUE(Connects("127.0.0.68", "127.0.0.1", listener.port));
  close(listener.fd);
}

// IPv6 sources are /64s; on a dual-stack socket, IPv4 peers are still IPv4.
TEST(SourceFilterTest, Ipv6PrefixesAndDualStack) {
  ListenSocket listener = Listen("::", 0).value();
  ASSERT_TRUE(AttachSourceFilter(listener.fd, {Ip("::1").SourceKey(), Ip("127.0.0.66")}).ok());
  EXPECT_FALSE(Connects("::1", "::1", listener.port));
  EXPECT_FALSE(Connects("127.0.0.66", "127.0.0.1", listener.port));
  EXPECT_TRUE(Connects("127.0.0.67", "127.0.0.1", listener.port));
  ASSERT_TRUE(AttachSourceFilter(listener.fd, {Ip("127.0.0.66")}).ok());
  EXPECT_TRUE(Connects("::1", "::1", listener.port));
  close(listener.fd);
}

// A full list still fits the kernel's 4096 instructions; the rest is refused at
// accept instead.
TEST(SourceFilterTest, ALongListIsCutToWhatTheKernelTakes) {
  std::vector<IpAddress> sources;
  for (int i = 0; i < 5000; ++i) {
    sources.push_back(Ip(absl::StrCat("10.", i / 65536, ".", (i / 256) % 256, ".", i % 256).c_str()));
  }
  for (int i = 0; i < 1000; ++i) {
    sources.push_back(Ip(absl::StrCat("2001:db8:", i, "::1").c_str()).SourceKey());
  }
  EXPECT_LE(SourceFilterProgram(sources).size(), 4096u);
  ListenSocket listener = Listen("127.0.0.1", 0).value();
  EXPECT_TRUE(AttachSourceFilter(listener.fd, sources).ok());
  EXPECT_TRUE(Connects("127.0.0.1", "127.0.0.1", listener.port));
  close(listener.fd);
}

}  // namespace
}  // namespace omd::net
