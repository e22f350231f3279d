// This process's memory, as the kernel counts it.
//
//   if (posix::ResidentBytes() > budget) Shed();
#ifndef OMD_POSIX_MEMORY_H_
#define OMD_POSIX_MEMORY_H_

#include <cstddef>

namespace omd::posix {

// Resident set size (/proc/self/statm), in bytes; 0 if unknown.
size_t ResidentBytes();

}  // namespace omd::posix

#endif  // OMD_POSIX_MEMORY_H_
