// A file descriptor that closes itself: one owner, moved, never copied.
//
//   UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
//   if (!fd.is_open()) return absl::ErrnoToStatus(errno, "cannot open");
//   read(fd.get(), buffer, size);
//   int raw = fd.Release();  // the caller closes it now
#ifndef OMD_POSIX_UNIQUE_FD_H_
#define OMD_POSIX_UNIQUE_FD_H_

#include <unistd.h>

#include <utility>

namespace omd::posix {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) Reset(std::exchange(other.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool is_open() const { return fd_ >= 0; }
  // Gives the descriptor up without closing it.
  int Release() { return std::exchange(fd_, -1); }
  // Closes the descriptor held, if any, and holds `fd` instead.
  void Reset(int fd = -1) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace omd::posix

#endif  // OMD_POSIX_UNIQUE_FD_H_
