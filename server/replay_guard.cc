#include "server/replay_guard.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/base/config.h"
#include "absl/cleanup/cleanup.h"
#include "absl/memory/memory.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "log/log.h"
#include "posix/unique_fd.h"

#ifndef ABSL_IS_LITTLE_ENDIAN
#error "the journal is little-endian and is read and written with native stores"
#endif

namespace omd::server {

// The journal: a header page, then `slot_count` slots, all little-endian. The
// layout is written down in docs/PROTOCOL.md; the offsets are checked below.
namespace replay_guard_internal {

struct JournalHeader {
  char magic[8];                // kMagic
  uint32_t format_version;      // kFormatVersion
  uint32_t slot_bytes;          // sizeof(Slot)
  uint64_t slot_count;          // the capacity it was written with
  uint64_t next_slot;           // where the next id goes; the newest is just before
  uint8_t boot_id[16];          // the machine's boot id when the journal was opened
  uint32_t clean;               // 1: closed by the destructor after a final sync
  uint32_t retention_seconds;   // the retention the expiries were computed with
  int64_t synced_at_unix_millis;  // when the last Sync() completed
  // Envelopes sent before it are refused (0: none). Kept by later starts while it
  // matters, so that a crash just after a floor was raised does not lift it.
  int64_t floor_unix_millis;
};

struct JournalSlot {
  uint64_t id_digest;              // 0: no id (never written)
  uint32_t expires_unix_seconds;   // the id is forgotten from this second on
  uint32_t sender_digest;          // for the per-sender counts after a reload
};

}  // namespace replay_guard_internal

using replay_guard_internal::JournalHeader;
using replay_guard_internal::JournalSlot;

// What Create hands the constructor: the mapping, and the state rebuilt from it.
struct ReplayGuard::Reloaded {
  void* mapping = nullptr;
  size_t mapping_bytes = 0;
  int journal_fd = -1;
  std::optional<absl::Time> floor;
  std::string floor_reason;
  std::string floor_refusal;
  absl::flat_hash_set<uint64_t> held;
  absl::flat_hash_map<uint32_t, uint32_t> held_by_sender;
  size_t head = 0;
  size_t tail = 0;
};

namespace {

constexpr char kMagic[8] = {'o', 'm', 'd', '-', 'r', 'p', 'l', 'y'};
constexpr uint32_t kFormatVersion = 1;
// A fixed size rather than the page size, so that the format does not depend on
// the machine; 4096 divides every page size Linux uses.
constexpr size_t kHeaderBytes = 4096;
constexpr size_t kBootIdBytes = 16;

constexpr char kUncleanRestartRefusal[] =
    "sent before this node's unclean restart; resend";
constexpr char kShrunkRefusal[] =
    "sent before this node's replay guard was shrunk; resend";

// The header's fields at their documented offsets.
#define OMD_CHECK_OFFSET(type, field, offset) \
  static_assert(offsetof(type, field) == (offset), #type "::" #field)

// A shared mapping of the journal, unmapped when it goes.
class Mapping {
 public:
  Mapping() = default;
  Mapping(void* address, size_t bytes) : address_(address), bytes_(bytes) {}
  Mapping(Mapping&& other) noexcept
      : address_(std::exchange(other.address_, nullptr)),
        bytes_(std::exchange(other.bytes_, 0)) {}
  Mapping& operator=(Mapping&& other) noexcept {
    if (this != &other) {
      Unmap();
      address_ = std::exchange(other.address_, nullptr);
      bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
  }
  ~Mapping() { Unmap(); }
  char* address() const { return static_cast<char*>(address_); }
  size_t bytes() const { return bytes_; }
  void* Release() {
    bytes_ = 0;
    return std::exchange(address_, nullptr);
  }

 private:
  void Unmap() {
    if (address_ != nullptr) munmap(address_, bytes_);
    address_ = nullptr;
  }
  void* address_ = nullptr;
  size_t bytes_ = 0;
};

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::ErrnoToStatus(errno, absl::StrCat("replay journal: ", what, " ", path));
}

absl::StatusOr<Mapping> Map(int fd, size_t bytes, int protection) {
  void* address = mmap(nullptr, bytes, protection, MAP_SHARED, fd, 0);
  if (address == MAP_FAILED) return absl::ErrnoToStatus(errno, "replay journal: mmap");
  return Mapping(address, bytes);
}

// The 16-byte id folded to 64 bits. Honest ids are uniformly random, and so is the
// digest. 0 marks a slot that was never written, so an id that folds to 0 is
// stored as 1 (which doubles the tiny chance of that one digest).
uint64_t IdDigest(absl::string_view request_id) {
  uint64_t first, last;
  std::memcpy(&first, request_id.data(), sizeof(first));
  std::memcpy(&last, request_id.data() + sizeof(first), sizeof(last));
  const uint64_t digest = first ^ last;
  return digest == 0 ? 1 : digest;
}

// 32-bit FNV-1a: stable across processes (the digest is stored in the journal),
// unlike absl::Hash. Two member names that collide share one share; with m
// members that happens with probability about m^2 / 2^33.
uint32_t SenderDigest(absl::string_view sender) {
  uint32_t hash = 2166136261u;
  for (char c : sender) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 16777619u;
  }
  return hash;
}

// Whole seconds, rounded up: an id is kept at least `retention`, at most one second
// more. Clamped to the slot's range (1970 to 2106). In integers: absl::Ceil would
// cost a quarter of Admit.
uint32_t UnixSecondsRoundedUp(absl::Time time) {
  constexpr int64_t kNanosPerSecond = 1'000'000'000;
  const int64_t nanos = absl::ToUnixNanos(time);  // saturates in 2262
  // Division truncates towards zero, which rounds a negative time up already.
  const int64_t seconds = nanos / kNanosPerSecond + (nanos % kNanosPerSecond > 0);
  return static_cast<uint32_t>(
      std::clamp<int64_t>(seconds, 1, std::numeric_limits<uint32_t>::max()));
}

uint32_t RetentionSeconds(absl::Duration retention) {
  return static_cast<uint32_t>(std::min<int64_t>(
      absl::ToInt64Seconds(absl::Ceil(retention, absl::Seconds(1))),
      std::numeric_limits<uint32_t>::max()));
}

// The 16 bytes of the boot id's UUID text.
absl::StatusOr<std::array<uint8_t, kBootIdBytes>> ReadBootId(const std::string& path) {
  posix::UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.is_open()) return absl::ErrnoToStatus(errno, absl::StrCat("cannot open ", path));
  char text[64];
  const ssize_t n = read(fd.get(), text, sizeof(text));
  if (n < 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot read ", path));
  std::array<uint8_t, kBootIdBytes> id{};
  size_t digits = 0;
  for (ssize_t i = 0; i < n && digits < 2 * kBootIdBytes; ++i) {
    const char c = text[i];
    if (c == '-') continue;
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) break;
    const uint8_t value = absl::ascii_isdigit(static_cast<unsigned char>(c))
                              ? c - '0'
                              : absl::ascii_tolower(static_cast<unsigned char>(c)) - 'a' + 10;
    id[digits / 2] |= digits % 2 == 0 ? value << 4 : value;
    ++digits;
  }
  if (digits != 2 * kBootIdBytes) {
    return absl::DataLossError(absl::StrCat(path, " does not hold a boot id"));
  }
  return id;
}

// Empty if `header` (of a file of `file_bytes`) is a journal this code can read;
// otherwise what is wrong with it.
std::string CheckHeader(const char* file, size_t file_bytes, size_t header_bytes,
                        size_t slot_bytes) {
  struct Fields {
    char magic[8];
    uint32_t format_version;
    uint32_t slot_bytes;
    uint64_t slot_count;
    uint64_t next_slot;
  } fields;
  std::memcpy(&fields, file, sizeof(fields));
  if (std::memcmp(fields.magic, kMagic, sizeof(kMagic)) != 0) return "bad magic";
  if (fields.format_version != kFormatVersion) {
    return absl::StrCat("format version ", fields.format_version, ", not ",
                        kFormatVersion);
  }
  if (fields.slot_bytes != slot_bytes) {
    return absl::StrCat("slots of ", fields.slot_bytes, " bytes, not ", slot_bytes);
  }
  if (fields.slot_count == 0 ||
      fields.slot_count != (file_bytes - header_bytes) / slot_bytes ||
      (file_bytes - header_bytes) % slot_bytes != 0) {
    return absl::StrCat(file_bytes, " bytes for ", fields.slot_count, " slots");
  }
  if (fields.next_slot >= fields.slot_count) {
    return absl::StrCat("next slot ", fields.next_slot, " of ", fields.slot_count);
  }
  return "";
}

// Rounded up, so that the floor read back is never below the one raised.
int64_t UnixMillisRoundedUp(absl::Time time) {
  constexpr int64_t kNanosPerMilli = 1'000'000;
  const int64_t nanos = absl::ToUnixNanos(time);
  return nanos / kNanosPerMilli + (nanos % kNanosPerMilli > 0);
}

absl::Status SyncDirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string directory =
      slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  posix::UniqueFd fd(open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.is_open() || fsync(fd.get()) != 0) return Errno("cannot sync directory", directory);
  return absl::OkStatus();
}

}  // namespace

OMD_CHECK_OFFSET(JournalHeader, magic, 0);
OMD_CHECK_OFFSET(JournalHeader, format_version, 8);
OMD_CHECK_OFFSET(JournalHeader, slot_bytes, 12);
OMD_CHECK_OFFSET(JournalHeader, slot_count, 16);
OMD_CHECK_OFFSET(JournalHeader, next_slot, 24);
OMD_CHECK_OFFSET(JournalHeader, boot_id, 32);
OMD_CHECK_OFFSET(JournalHeader, clean, 48);
OMD_CHECK_OFFSET(JournalHeader, retention_seconds, 52);
OMD_CHECK_OFFSET(JournalHeader, synced_at_unix_millis, 56);
OMD_CHECK_OFFSET(JournalHeader, floor_unix_millis, 64);
static_assert(sizeof(JournalHeader) == 72);
OMD_CHECK_OFFSET(JournalSlot, id_digest, 0);
OMD_CHECK_OFFSET(JournalSlot, expires_unix_seconds, 8);
OMD_CHECK_OFFSET(JournalSlot, sender_digest, 12);
static_assert(sizeof(JournalSlot) == 16);

absl::StatusOr<std::unique_ptr<ReplayGuard>> ReplayGuard::Create(Options options) {
  if (options.capacity == 0 || options.capacity > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat("replay guard capacity ", options.capacity, " is not in [1, 2^32)"));
  }
  if (options.retention <= absl::ZeroDuration() ||
      options.clock_skew < absl::ZeroDuration() ||
      options.sync_interval < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "replay guard: retention must be positive, clock_skew and sync_interval not "
        "negative");
  }
  if (!options.clock) return absl::InvalidArgumentError("replay guard: no clock");
  const size_t capacity = options.capacity;
  const size_t mapping_bytes = kHeaderBytes + capacity * sizeof(Slot);
  const absl::Time now = options.clock();

  Reloaded reloaded;
  reloaded.held.reserve(capacity);
  if (options.journal_path.empty()) {
    // Anonymous memory, touched only as slots are used.
    void* address = mmap(nullptr, mapping_bytes, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (address == MAP_FAILED) return absl::ErrnoToStatus(errno, "replay guard: mmap");
    reloaded.mapping = address;
    reloaded.mapping_bytes = mapping_bytes;
    return absl::WrapUnique(new ReplayGuard(std::move(options), std::move(reloaded)));
  }

  const std::string& path = options.journal_path;
  const std::string new_path = path + ".new";
  const std::string corrupt_path = path + ".corrupt";

  // Every envelope accepted before `last_alive` was sent before last_alive + skew;
  // sync_interval covers the time between the last Sync and a crash.
  auto floor_after = [&options](absl::Time last_alive) {
    return last_alive + options.sync_interval + options.clock_skew;
  };
  auto raise_floor = [&](absl::Time floor, const std::string& reason,
                         absl::string_view refusal) {
    // Whatever the file says (a bad time, a clock stepped back): every id the
    // journal held was accepted before now.
    floor = std::min(floor, floor_after(now));
    if (!reloaded.floor.has_value() || floor > *reloaded.floor) {
      reloaded.floor = floor;
      reloaded.floor_refusal = std::string(refusal);
    }
    absl::StrAppend(&reloaded.floor_reason, reloaded.floor_reason.empty() ? "" : "; ",
                    reason);
  };

  // The old journal, if there is one. Its lock keeps a second omd from sharing it.
  posix::UniqueFd old_fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  Mapping old;
  std::string corruption;
  if (!old_fd.is_open()) {
    if (errno != ENOENT) return Errno("cannot open", path);
  } else {
    if (flock(old_fd.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK) {
        return absl::FailedPreconditionError(
            absl::StrCat("replay journal ", path, " is in use by another process"));
      }
      return Errno("cannot lock", path);
    }
    struct stat st;
    if (fstat(old_fd.get(), &st) != 0) return Errno("cannot stat", path);
    if (!S_ISREG(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat("replay journal ", path, " is not a regular file"));
    }
    const size_t file_bytes = static_cast<size_t>(st.st_size);
    if (file_bytes < kHeaderBytes) {
      corruption = absl::StrCat(file_bytes, " bytes, shorter than its header");
    } else {
      absl::StatusOr<Mapping> mapped = Map(old_fd.get(), file_bytes, PROT_READ);
      if (!mapped.ok()) return mapped.status();
      old = *std::move(mapped);
      corruption = CheckHeader(old.address(), file_bytes, kHeaderBytes, sizeof(Slot));
    }
  }
  const Header* old_header = nullptr;
  if (old_fd.is_open() && corruption.empty()) {
    old_header = reinterpret_cast<const Header*>(old.address());
  } else if (old_fd.is_open()) {
    old = Mapping();
    // A link, not a rename: `path` must go on existing until the new journal
    // replaces it, or a crash in between would leave no journal, and no floor.
    unlink(corrupt_path.c_str());
    if (link(path.c_str(), corrupt_path.c_str()) == 0) {
      OMD_LOG(WARNING, "replay journal %s is corrupt (%s): kept as %s, starting empty",
              path, corruption, corrupt_path);
    } else {
      // Replaced below all the same: the floor matters, not the evidence.
      OMD_LOG(WARNING, "replay journal %s is corrupt (%s) and cannot be kept as %s: %s; "
              "starting empty", path, corruption, corrupt_path, std::strerror(errno));
    }
    raise_floor(floor_after(now),
                absl::StrCat("the replay journal was corrupt (", corruption,
                             ") and was replaced: the ids it held are lost"),
                kUncleanRestartRefusal);
  }

  absl::StatusOr<std::array<uint8_t, kBootIdBytes>> boot_id =
      ReadBootId(options.boot_id_path);
  if (old_header != nullptr && old_header->floor_unix_millis != 0) {
    // It stops mattering once Open refuses everything sent before it anyway.
    const absl::Time earlier = absl::FromUnixMillis(old_header->floor_unix_millis);
    if (earlier + options.clock_skew > now) {
      raise_floor(earlier,
                  absl::StrCat("the floor raised at an earlier start, at ",
                               absl::FormatTime(earlier), ", still holds"),
                  kUncleanRestartRefusal);
    }
  }
  if (old_header != nullptr && old_header->clean != 1) {
    const absl::Time synced_at = absl::FromUnixMillis(old_header->synced_at_unix_millis);
    // The same boot: only omd died, and the page cache kept every store it made.
    if (!boot_id.ok()) {
      raise_floor(floor_after(synced_at),
                  absl::StrCat("the replay journal was not closed cleanly and whether "
                               "the machine restarted is unknown (",
                               boot_id.status().message(),
                               "): ids accepted after its last sync at ",
                               absl::FormatTime(synced_at), " may be lost"),
                  kUncleanRestartRefusal);
    } else if (std::memcmp(old_header->boot_id, boot_id->data(), kBootIdBytes) != 0) {
      raise_floor(floor_after(synced_at),
                  absl::StrCat("the replay journal was not closed cleanly and the "
                               "machine has restarted since (its boot id changed): ids "
                               "accepted after its last sync at ",
                               absl::FormatTime(synced_at), " may be lost"),
                  kUncleanRestartRefusal);
    }
  }

  // The new journal is written beside the old one and renamed over it, so that a
  // crash now leaves one or the other, whole.
  posix::UniqueFd fd(open(new_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd.is_open()) return Errno("cannot create", new_path);
  absl::Cleanup remove_new = [&new_path] { unlink(new_path.c_str()); };
  if (flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    std::move(remove_new).Cancel();  // another process's
    return absl::FailedPreconditionError(
        absl::StrCat("replay journal ", new_path, " is in use by another process"));
  }
  if (fchmod(fd.get(), 0600) != 0 || ftruncate(fd.get(), 0) != 0 ||
      ftruncate(fd.get(), static_cast<off_t>(mapping_bytes)) != 0) {
    return Errno("cannot size", new_path);
  }
  // Blocks allocated now: a full disk fails here rather than as a SIGBUS on a store.
  if (const int error = posix_fallocate(fd.get(), 0, static_cast<off_t>(mapping_bytes));
      error != 0) {
    errno = error;
    return Errno("cannot allocate", new_path);
  }
  absl::StatusOr<Mapping> mapping = Map(fd.get(), mapping_bytes, PROT_READ | PROT_WRITE);
  if (!mapping.ok()) return mapping.status();
  Header* header = reinterpret_cast<Header*>(mapping->address());
  Slot* slots = reinterpret_cast<Slot*>(mapping->address() + kHeaderBytes);
  std::memcpy(header->magic, kMagic, sizeof(kMagic));
  header->format_version = kFormatVersion;
  header->slot_bytes = sizeof(Slot);
  header->slot_count = capacity;
  header->next_slot = 0;
  if (boot_id.ok()) std::memcpy(header->boot_id, boot_id->data(), kBootIdBytes);
  header->clean = 0;
  header->retention_seconds = RetentionSeconds(options.retention);
  header->synced_at_unix_millis = absl::ToUnixMillis(now);

  if (old_header != nullptr) {
    // Newest first, into the new ring's last slots (newest last), so that the held
    // ids end just before slot 0, where the next one goes. Newest first also
    // means that if they do not all fit, the ones dropped are the oldest.
    const Slot* old_slots = reinterpret_cast<const Slot*>(old.address() + kHeaderBytes);
    const size_t old_count = old_header->slot_count;
    const int64_t now_seconds = absl::ToUnixSeconds(now);
    // A longer retention than the expiries were computed with (a larger clock
    // skew) applies to the ids already held too.
    const int64_t extension =
        std::max<int64_t>(0, int64_t{header->retention_seconds} -
                                 int64_t{old_header->retention_seconds});
    size_t kept = 0;
    size_t dropped = 0;
    uint32_t dropped_max_expiry = 0;
    size_t index = old_header->next_slot;
    for (size_t n = 0; n < old_count; ++n) {
      index = (index == 0 ? old_count : index) - 1;
      const Slot slot = old_slots[index];
      const int64_t expires = std::min<int64_t>(
          int64_t{slot.expires_unix_seconds} + extension,
          std::numeric_limits<uint32_t>::max());
      // Never written, expired, or an older copy of a held digest (which only a
      // clock stepped back can leave).
      if (slot.id_digest == 0 || expires <= now_seconds ||
          reloaded.held.contains(slot.id_digest)) {
        continue;
      }
      if (kept == capacity) {
        ++dropped;
        dropped_max_expiry = std::max(dropped_max_expiry, slot.expires_unix_seconds);
        continue;
      }
      reloaded.held.insert(slot.id_digest);
      ++reloaded.held_by_sender[slot.sender_digest];
      slots[capacity - 1 - kept] = {slot.id_digest, static_cast<uint32_t>(expires),
                                    slot.sender_digest};
      ++kept;
    }
    // The oldest kept id's slot; with none kept (all expired), slot 0, where the
    // next one goes: the ring is empty.
    reloaded.head = (capacity - kept) % capacity;
    if (dropped > 0) {
      // An id dropped was accepted at expiry - retention at the latest, so it was
      // sent before that + skew.
      const absl::Time accepted_by = absl::FromUnixSeconds(dropped_max_expiry) -
                                     absl::Seconds(old_header->retention_seconds);
      raise_floor(accepted_by + options.clock_skew,
                  absl::StrCat("the replay journal held ", kept + dropped,
                               " live ids, more than the capacity ", capacity,
                               ": the oldest ", dropped, " were dropped"),
                  kShrunkRefusal);
    }
  }
  reloaded.tail = 0;
  if (reloaded.floor.has_value()) {
    header->floor_unix_millis = UnixMillisRoundedUp(*reloaded.floor);
  }

  if (msync(mapping->address(), mapping_bytes, MS_SYNC) != 0 || fsync(fd.get()) != 0) {
    return Errno("cannot sync", new_path);
  }
  if (rename(new_path.c_str(), path.c_str()) != 0) return Errno("cannot rename", new_path);
  std::move(remove_new).Cancel();
  if (absl::Status synced = SyncDirectoryOf(path); !synced.ok()) return synced;

  reloaded.mapping_bytes = mapping->bytes();
  reloaded.mapping = mapping->Release();
  reloaded.journal_fd = fd.Release();
  return absl::WrapUnique(new ReplayGuard(std::move(options), std::move(reloaded)));
}

ReplayGuard::ReplayGuard(Options options, Reloaded reloaded)
    : options_(std::move(options)),
      floor_(reloaded.floor),
      floor_reason_(std::move(reloaded.floor_reason)),
      floor_refusal_(std::move(reloaded.floor_refusal)),
      mapping_(reloaded.mapping),
      mapping_bytes_(reloaded.mapping_bytes),
      journal_fd_(reloaded.journal_fd),
      header_(static_cast<Header*>(reloaded.mapping)),
      slots_(reinterpret_cast<Slot*>(static_cast<char*>(reloaded.mapping) + kHeaderBytes)),
      held_(std::move(reloaded.held)),
      held_by_sender_(std::move(reloaded.held_by_sender)),
      head_(reloaded.head),
      tail_(reloaded.tail) {}

ReplayGuard::~ReplayGuard() {
  if (journal_fd_ >= 0) {
    absl::Status synced = Sync();
    if (synced.ok()) {
      // After the final sync, so that `clean` on disk vouches for every slot.
      {
        sync::MutexLock lock(&mutex_);
        header_->clean = 1;
      }
      if (msync(mapping_, kHeaderBytes, MS_SYNC) != 0) {
        OMD_LOG(WARNING, "replay journal %s: cannot mark it clean: %s",
                options_.journal_path, std::strerror(errno));
      }
    } else {
      OMD_LOG(WARNING, "replay journal %s left unclean: %s", options_.journal_path,
              synced.ToString());
    }
  }
  munmap(mapping_, mapping_bytes_);
  if (journal_fd_ >= 0) close(journal_fd_);
}

void ReplayGuard::DropExpired(int64_t now_seconds) {
  while (!held_.empty()) {
    const Slot& oldest = slots_[head_];
    if (int64_t{oldest.expires_unix_seconds} > now_seconds) break;
    held_.erase(oldest.id_digest);
    auto count = held_by_sender_.find(oldest.sender_digest);
    if (count != held_by_sender_.end() && --count->second == 0) {
      held_by_sender_.erase(count);
    }
    if (++head_ == options_.capacity) head_ = 0;
  }
}

absl::Status ReplayGuard::Admit(absl::string_view request_id, absl::string_view sender,
                                absl::Time sent_at, size_t senders) {
  if (request_id.size() != kRequestIdBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "request id of ", request_id.size(), " bytes, not ", kRequestIdBytes));
  }
  if (senders == 0) return absl::InvalidArgumentError("no senders");
  if (floor_.has_value() && sent_at < *floor_) {
    return absl::UnauthenticatedError(floor_refusal_);
  }
  const uint64_t id = IdDigest(request_id);
  const uint32_t sender_digest = SenderDigest(sender);
  const absl::Time now = options_.clock();
  const uint32_t expires = UnixSecondsRoundedUp(now + options_.retention);
  // A sender's share is enforced only once the guard is half full: one member
  // flooding holds half the guard at most (or its share, if more), and each of
  // the others then still gets its share; while the guard is less than half
  // full, a busy member of a large quiet cluster is not held to 1/members of it
  // (with 1,000 members that was 1,048 ids in 120 s: 9 requests a second).
  const size_t half = options_.capacity / 2;
  const size_t share = std::max<size_t>(1, options_.capacity / senders);

  sync::MutexLock lock(&mutex_);
  DropExpired(absl::ToUnixSeconds(now));
  if (held_.contains(id)) return absl::UnauthenticatedError("replayed request");
  auto held_by_sender = held_by_sender_.find(sender_digest);
  if (held_.size() >= half && held_by_sender != held_by_sender_.end() &&
      held_by_sender->second >= share) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "replay guard: half full, and sender ", sender, " holds its share of ", share,
        " recent request ids (capacity ", options_.capacity, " / ", senders,
        " senders); retry later"));
  }
  if (held_.size() >= options_.capacity) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "replay guard: full with ", options_.capacity,
        " recent request ids; retry later"));
  }
  held_.insert(id);
  if (held_by_sender == held_by_sender_.end()) {
    held_by_sender_.emplace(sender_digest, 1);
  } else {
    ++held_by_sender->second;
  }
  // The header first: if omd dies between the two, the reload finds the slot's
  // previous (expired) contents, rather than taking a fresh id for the oldest.
  const size_t next = tail_ + 1 == options_.capacity ? 0 : tail_ + 1;
  header_->next_slot = next;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  slots_[tail_] = {id, expires, sender_digest};
  tail_ = next;
  return absl::OkStatus();
}

absl::Status ReplayGuard::Sync() {
  if (journal_fd_ < 0) return absl::OkStatus();
  sync::MutexLock serial(&sync_mutex_);
  // Not under mutex_: Admit goes on storing into the mapping meanwhile.
  if (msync(mapping_, mapping_bytes_, MS_SYNC) != 0) {
    return Errno("cannot sync", options_.journal_path);
  }
  {
    sync::MutexLock lock(&mutex_);
    header_->synced_at_unix_millis = absl::ToUnixMillis(options_.clock());
  }
  // The time on disk now, not at the next sync: the floor after a crash of the
  // machine counts on it being at most sync_interval old.
  if (msync(mapping_, kHeaderBytes, MS_SYNC) != 0) {
    return Errno("cannot sync", options_.journal_path);
  }
  return absl::OkStatus();
}

size_t ReplayGuard::held() const {
  sync::MutexLock lock(&mutex_);
  return held_.size();
}

}  // namespace omd::server
