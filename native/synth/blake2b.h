// BLAKE2b with an 8-byte digest and no key (RFC 7693), the hash behind syno_tvm.ir.graph.digest.
//
// The native search must name dims and nodes exactly as the Python space does: two canonicalization rules order
// steps by dim hash, so a different hash would pick different canonical forms and native finals could not be
// replayed (and checked) by the Python space.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

namespace syno {

namespace blake2b_detail {

constexpr uint64_t IV[8] = {0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL,
                            0xa54ff53a5f1d36f1ULL, 0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL,
                            0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL};

constexpr uint8_t SIGMA[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4}, {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13}, {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11}, {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5}, {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3}};

inline uint64_t rotr(uint64_t x, int n) { return (x >> n) | (x << (64 - n)); }

inline void mix(uint64_t* v, int a, int b, int c, int d, uint64_t x, uint64_t y) {
  v[a] = v[a] + v[b] + x;
  v[d] = rotr(v[d] ^ v[a], 32);
  v[c] = v[c] + v[d];
  v[b] = rotr(v[b] ^ v[c], 24);
  v[a] = v[a] + v[b] + y;
  v[d] = rotr(v[d] ^ v[a], 16);
  v[c] = v[c] + v[d];
  v[b] = rotr(v[b] ^ v[c], 63);
}

inline void compress(uint64_t* h, const uint8_t* block, uint64_t counter, bool last) {
  uint64_t m[16], v[16];
  for (int i = 0; i < 16; ++i) {
    uint64_t w = 0;
    for (int j = 7; j >= 0; --j) w = (w << 8) | block[8 * i + j];  // little-endian words
    m[i] = w;
  }
  for (int i = 0; i < 8; ++i) {
    v[i] = h[i];
    v[i + 8] = IV[i];
  }
  v[12] ^= counter;  // the byte counter's high word stays 0: inputs are short
  if (last) v[14] = ~v[14];
  for (int r = 0; r < 12; ++r) {
    const uint8_t* s = SIGMA[r];
    mix(v, 0, 4, 8, 12, m[s[0]], m[s[1]]);
    mix(v, 1, 5, 9, 13, m[s[2]], m[s[3]]);
    mix(v, 2, 6, 10, 14, m[s[4]], m[s[5]]);
    mix(v, 3, 7, 11, 15, m[s[6]], m[s[7]]);
    mix(v, 0, 5, 10, 15, m[s[8]], m[s[9]]);
    mix(v, 1, 6, 11, 12, m[s[10]], m[s[11]]);
    mix(v, 2, 7, 8, 13, m[s[12]], m[s[13]]);
    mix(v, 3, 4, 9, 14, m[s[14]], m[s[15]]);
  }
  for (int i = 0; i < 8; ++i) h[i] ^= v[i] ^ v[i + 8];
}

}  // namespace blake2b_detail

// The 8-byte digest read big-endian, so that comparing two values compares their hex texts (Python compares the
// hexdigest strings).
inline uint64_t blake2b64(const char* text, size_t n) {
  using namespace blake2b_detail;
  uint64_t h[8];
  for (int i = 0; i < 8; ++i) h[i] = IV[i];
  h[0] ^= 0x01010000ULL ^ 8;  // depth 1, fanout 1, no key, 8-byte digest
  const auto* data = reinterpret_cast<const uint8_t*>(text);
  size_t done = 0;
  uint8_t block[128];
  while (n - done > 128) {  // every full block but the last
    compress(h, data + done, done + 128, false);
    done += 128;
  }
  std::memset(block, 0, sizeof block);
  std::memcpy(block, data + done, n - done);
  compress(h, block, n, true);
  uint64_t out = 0;
  for (int i = 0; i < 8; ++i) out = (out << 8) | ((h[0] >> (8 * i)) & 0xff);
  return out;
}

inline uint64_t blake2b64(const std::string& text) { return blake2b64(text.data(), text.size()); }

// The 16 hex digits of a digest into out[0..16) (Python's hexdigest).
inline void write_hex64(uint64_t h, char* out) {
  static const char* digits = "0123456789abcdef";
  for (int i = 15; i >= 0; --i, h >>= 4) out[i] = digits[h & 0xf];
}

inline std::string hex64(uint64_t h) {
  std::string s(16, '0');
  write_hex64(h, &s[0]);
  return s;
}

}  // namespace syno
