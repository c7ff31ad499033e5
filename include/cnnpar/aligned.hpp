// Activation buffers aligned to a cache line. The kernels load and store whole vectors (64 bytes on AVX-512); with
// glibc's malloc a large buffer starts 16 bytes past a page, so every such vector straddled two cache lines (split
// loads and stores). Aligned, the seed's conv at B = 64 measured 83-86 GF/s against 57-71 unaligned, interleaved
// (cnnpar_kernels_bench; docs/kernels.md "Aligned buffers"). Every row and channel of the C,H,W,B tensors stays
// aligned when B is a multiple of 16; other batch sizes still gain at the tensor's start.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace cnnpar {

inline constexpr std::size_t kCacheLine = 64;

template <class T>
struct CacheLineAllocator {
  using value_type = T;
  CacheLineAllocator() = default;
  template <class U>
  constexpr CacheLineAllocator(const CacheLineAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{kCacheLine}));
  }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, std::align_val_t{kCacheLine}); }
  template <class U>
  bool operator==(const CacheLineAllocator<U>&) const noexcept {
    return true;
  }
};

// A float buffer whose first element starts a cache line.
using AlignedFloats = std::vector<float, CacheLineAllocator<float>>;

}  // namespace cnnpar
