#include "net/source_filter.h"

#include <errno.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace omd::net {
namespace {

constexpr uint32_t kAccept = 0xffffffff;  // keep the whole packet
constexpr uint32_t kDrop = 0;

sock_filter Statement(uint16_t code, uint32_t k) { return BPF_STMT(code, k); }
sock_filter Jump(uint16_t code, uint32_t k, uint8_t if_true, uint8_t if_false) {
  return BPF_JUMP(code, k, if_true, if_false);
}

uint32_t Word(const uint8_t* bytes) {
  return (uint32_t{bytes[0]} << 24) | (uint32_t{bytes[1]} << 16) | (uint32_t{bytes[2]} << 8) |
         bytes[3];
}

}  // namespace

std::vector<sock_filter> SourceFilterProgram(const std::vector<IpAddress>& sources) {
  std::vector<uint32_t> v4;
  std::vector<std::pair<uint32_t, uint32_t>> v6;  // the /64, as two words
  for (const IpAddress& source : sources) {
    const IpAddress key = source.SourceKey();
    const std::array<uint8_t, 16>& bytes = key.bytes();
    if (key.is_v4()) {
      if (v4.size() < kMaxDroppedIpv4Sources) v4.push_back(Word(bytes.data()));
    } else if (v6.size() < kMaxDroppedIpv6Sources) {
      v6.emplace_back(Word(bytes.data()), Word(bytes.data() + 4));
    }
  }
  // The offsets are from the network header: the program runs on TCP segments.
  std::vector<sock_filter> program;
  program.push_back(Statement(BPF_LD | BPF_B | BPF_ABS, SKF_NET_OFF + 0));
  program.push_back(Statement(BPF_ALU | BPF_AND | BPF_K, 0xf0));
  program.push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, 0x40, 1, 0));  // IPv4: skip the ja
  const size_t ipv6_jump = program.size();
  program.push_back(Statement(BPF_JMP | BPF_JA, 0));  // to the IPv6 part, set below
  // IPv4: the source address is at offset 12.
  program.push_back(Statement(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 12));
  for (uint32_t address : v4) {
    program.push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, address, 0, 1));
    program.push_back(Statement(BPF_RET | BPF_K, kDrop));
  }
  program.push_back(Statement(BPF_RET | BPF_K, kAccept));
  program[ipv6_jump].k = static_cast<uint32_t>(program.size() - ipv6_jump - 1);
  // IPv6: the source address is at offset 8; a /64 is its first two words.
  for (const auto& [high, low] : v6) {
    program.push_back(Statement(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 8));
    program.push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, high, 0, 3));
    program.push_back(Statement(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 12));
    program.push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, low, 0, 1));
    program.push_back(Statement(BPF_RET | BPF_K, kDrop));
  }
  program.push_back(Statement(BPF_RET | BPF_K, kAccept));
  return program;
}

absl::Status AttachSourceFilter(int fd, const std::vector<IpAddress>& sources) {
  if (sources.empty()) {
    DetachSourceFilter(fd);
    return absl::OkStatus();
  }
  std::vector<sock_filter> program = SourceFilterProgram(sources);
  sock_fprog filter{static_cast<unsigned short>(program.size()), program.data()};
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &filter, sizeof(filter)) != 0) {
    return absl::InternalError(
        absl::StrCat("cannot attach the source filter: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

void DetachSourceFilter(int fd) {
  const int unused = 0;  // the kernel wants an int, though it reads none
  setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, &unused, sizeof(unused));
}

}  // namespace omd::net
