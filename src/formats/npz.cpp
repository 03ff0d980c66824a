#include "formats/npz.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "core/mapped_file.h"
#include "paligemma/error.h"

namespace pg {

namespace {

// Zip record signatures and fixed sizes (PKWARE APPNOTE.TXT 4.3).
constexpr uint32_t kLocalHeaderSignature = 0x04034b50;
constexpr uint32_t kCentralHeaderSignature = 0x02014b50;
constexpr uint32_t kEndOfDirectorySignature = 0x06054b50;
constexpr uint32_t kZip64EndOfDirectorySignature = 0x06064b50;
constexpr uint32_t kZip64LocatorSignature = 0x07064b50;
constexpr size_t kLocalHeaderSize = 30;
constexpr size_t kCentralHeaderSize = 46;
constexpr size_t kEndOfDirectorySize = 22;
constexpr size_t kZip64LocatorSize = 20;
constexpr size_t kZip64EndOfDirectorySize = 56;
constexpr uint16_t kZip64ExtraId = 0x0001;
constexpr uint16_t kMethodStored = 0;
constexpr uint16_t kMethodDeflate = 8;
// Deflate cannot expand data by more than about 1032:1; a larger claimed size is a corrupt directory.
constexpr uint64_t kMaxDeflateRatio = 1032;

uint16_t le16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }
uint32_t le32(const uint8_t* p) { return uint32_t(le16(p)) | (uint32_t(le16(p + 2)) << 16); }
uint64_t le64(const uint8_t* p) { return uint64_t(le32(p)) | (uint64_t(le32(p + 4)) << 32); }

[[noreturn]] void fail(const std::string& path, const std::string& what) { throw Error(path + ": " + what); }

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// The value text of `'key': ` in a .npy header dict, up to the next top-level ',' or '}'.
std::string header_value(const std::string& header, const std::string& key, const std::string& name) {
  const size_t k = header.find("'" + key + "'");
  if (k == std::string::npos) throw Error(name + ": .npy header has no '" + key + "' entry");
  size_t p = header.find(':', k);
  if (p == std::string::npos) throw Error(name + ": malformed .npy header");
  ++p;
  while (p < header.size() && header[p] == ' ') ++p;
  size_t e = p;
  int depth = 0;
  for (; e < header.size(); ++e) {
    const char c = header[e];
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (depth == 0 && (c == ',' || c == '}')) break;
  }
  return header.substr(p, e - p);
}

}  // namespace

NpyArray parse_npy(const uint8_t* data, size_t size, const std::string& name) {
  if (size < 10 || std::memcmp(data, "\x93NUMPY", 6) != 0) throw Error(name + " is not a .npy array");
  const int major = data[6];
  if (major < 1 || major > 3) throw Error(name + ": unsupported .npy format version " + std::to_string(major));
  const size_t length_bytes = major == 1 ? 2 : 4;
  if (size < 8 + length_bytes) throw Error(name + ": truncated .npy header");
  const size_t header_length = major == 1 ? le16(data + 8) : le32(data + 8);
  const size_t data_offset = 8 + length_bytes + header_length;
  if (data_offset > size) throw Error(name + ": truncated .npy header");
  const std::string header(reinterpret_cast<const char*>(data) + 8 + length_bytes, header_length);

  NpyArray a;
  const std::string descr = header_value(header, "descr", name);
  if (descr.size() < 2 || descr.front() != '\'' || descr.back() != '\'') throw Error(name + ": malformed dtype");
  a.dtype = descr.substr(1, descr.size() - 2);
  if (a.dtype != "<f4" && a.dtype != "|u1")
    throw Error(name + " has dtype " + a.dtype + "; only float32 (<f4) and uint8 are supported");
  if (header_value(header, "fortran_order", name) != "False")
    throw Error(name + " is stored in Fortran order; save it in C order (np.ascontiguousarray)");
  const std::string shape = header_value(header, "shape", name);
  if (shape.size() < 2 || shape.front() != '(' || shape.back() != ')') throw Error(name + ": malformed shape");
  uint64_t count = 1;
  for (size_t i = 1; i + 1 < shape.size();) {
    if (shape[i] == ' ' || shape[i] == ',') {
      ++i;
      continue;
    }
    if (shape[i] < '0' || shape[i] > '9') throw Error(name + ": malformed shape " + shape);
    uint64_t dim = 0;
    for (; i + 1 < shape.size() && shape[i] >= '0' && shape[i] <= '9'; ++i) {
      dim = dim * 10 + uint64_t(shape[i] - '0');
      if (dim > (uint64_t(1) << 40)) throw Error(name + ": shape " + shape + " is too large");
    }
    if (dim != 0 && count > (uint64_t(1) << 40) / dim) throw Error(name + ": shape " + shape + " is too large");
    count *= dim;
    a.shape.push_back(int64_t(dim));
  }
  const uint64_t expected = count * (a.dtype == "<f4" ? 4 : 1);
  const uint64_t present = size - data_offset;
  if (present != expected)
    throw Error(name + ": shape " + shape_string(a.shape) + " needs " + std::to_string(expected) + " data bytes but " +
                std::to_string(present) + " are present (truncated or corrupt)");
  a.bytes.assign(data + data_offset, data + size);
  return a;
}

NpzFile::NpzFile(const std::string& path) : file_(std::make_unique<MappedFile>(path)) {
  const uint8_t* d = file_->data();
  const size_t n = file_->size();
  if (n < kEndOfDirectorySize) fail(path, "not an .npz (zip) archive: too short (" + std::to_string(n) + " bytes)");
  // The end-of-directory record is last, followed only by an archive comment of up to 65535 bytes.
  size_t eocd = n - kEndOfDirectorySize;
  const size_t lowest = n > kEndOfDirectorySize + 65535 ? n - kEndOfDirectorySize - 65535 : 0;
  while (le32(d + eocd) != kEndOfDirectorySignature) {
    if (eocd == lowest) fail(path, "not an .npz (zip) archive, or truncated: no end-of-directory record");
    --eocd;
  }
  uint64_t entries = le16(d + eocd + 10);
  uint64_t directory_size = le32(d + eocd + 12);
  uint64_t directory_offset = le32(d + eocd + 16);
  if (entries == 0xffff || directory_size == 0xffffffff || directory_offset == 0xffffffff) {
    if (eocd < kZip64LocatorSize || le32(d + eocd - kZip64LocatorSize) != kZip64LocatorSignature)
      fail(path, "zip64 archive without its locator record (corrupt)");
    const uint64_t record = le64(d + eocd - kZip64LocatorSize + 8);
    if (n < kZip64EndOfDirectorySize || record > n - kZip64EndOfDirectorySize ||
        le32(d + record) != kZip64EndOfDirectorySignature)
      fail(path, "corrupt zip64 end-of-directory record");
    entries = le64(d + record + 32);
    directory_size = le64(d + record + 40);
    directory_offset = le64(d + record + 48);
  }
  if (directory_offset > n || directory_size > n - directory_offset)
    fail(path, "the zip directory lies outside the file (truncated download?)");

  size_t p = size_t(directory_offset);
  const size_t directory_end = size_t(directory_offset + directory_size);
  for (uint64_t i = 0; i < entries; ++i) {
    if (p + kCentralHeaderSize > directory_end || le32(d + p) != kCentralHeaderSignature)
      fail(path, "corrupt zip directory entry " + std::to_string(i));
    Member m;
    const uint16_t flags = le16(d + p + 8);
    m.method = le16(d + p + 10);
    m.crc32 = le32(d + p + 16);
    m.compressed_size = le32(d + p + 20);
    m.size = le32(d + p + 24);
    const size_t name_length = le16(d + p + 28), extra_length = le16(d + p + 30), comment_length = le16(d + p + 32);
    m.local_header_offset = le32(d + p + 42);
    const size_t record_end = p + kCentralHeaderSize + name_length + extra_length + comment_length;
    if (record_end > directory_end) fail(path, "corrupt zip directory entry " + std::to_string(i));
    std::string name(reinterpret_cast<const char*>(d + p + kCentralHeaderSize), name_length);
    if (flags & 1) fail(path, "member " + name + " is encrypted; re-save the archive with np.savez");
    // Zip64 sizes: the extra field lists, in this order, exactly those of the three fields that are 0xffffffff.
    const uint8_t* extra = d + p + kCentralHeaderSize + name_length;
    for (size_t e = 0; e + 4 <= extra_length;) {
      const uint16_t id = le16(extra + e), length = le16(extra + e + 2);
      if (e + 4 + length > extra_length) fail(path, "corrupt extra field of member " + name);
      if (id == kZip64ExtraId) {
        size_t f = e + 4;
        for (uint64_t* field : {&m.size, &m.compressed_size, &m.local_header_offset}) {
          if (*field != 0xffffffff) continue;
          if (f + 8 > e + 4 + length) fail(path, "corrupt zip64 field of member " + name);
          *field = le64(extra + f);
          f += 8;
        }
      }
      e += 4 + length;
    }
    const std::string suffix = ".npy";
    if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      m.key = name.substr(0, name.size() - suffix.size());
      members_.push_back(std::move(m));
    }
    p = record_end;
  }
}

NpzFile::~NpzFile() = default;

const std::string& NpzFile::path() const { return file_->path(); }

std::vector<std::string> NpzFile::keys() const {
  std::vector<std::string> k;
  for (const auto& m : members_) k.push_back(m.key);
  return k;
}

bool NpzFile::contains(const std::string& key) const {
  for (const auto& m : members_)
    if (m.key == key) return true;
  return false;
}

const NpzFile::Member& NpzFile::member(const std::string& key) const {
  for (const auto& m : members_)
    if (m.key == key) return m;
  fail(path(), "has no array \"" + key + "\" (" + std::to_string(members_.size()) +
                   " arrays present); is this the right file?");
}

NpyArray NpzFile::read_f32(const std::string& key) const {
  const Member& m = member(key);
  const std::string name = path() + " [" + key + "]";
  const uint8_t* d = file_->data();
  const size_t n = file_->size();
  if (m.local_header_offset > n - kLocalHeaderSize || le32(d + m.local_header_offset) != kLocalHeaderSignature)
    fail(path(), "corrupt local header of array \"" + key + "\"");
  const uint64_t data_offset = m.local_header_offset + kLocalHeaderSize + le16(d + m.local_header_offset + 26) +
                               le16(d + m.local_header_offset + 28);
  if (data_offset > n || m.compressed_size > n - data_offset)
    fail(path(), "array \"" + key + "\" extends past the end of the file (truncated download?)");
  const uint8_t* packed = d + data_offset;

  std::vector<uint8_t> bytes;
  if (m.method == kMethodStored) {
    if (m.compressed_size != m.size) fail(path(), "array \"" + key + "\" has inconsistent sizes (corrupt)");
    bytes.assign(packed, packed + m.size);
  } else if (m.method == kMethodDeflate) {
    if (m.size > m.compressed_size * kMaxDeflateRatio + 1024)
      fail(path(), "array \"" + key + "\" claims an impossible size (corrupt)");
    bytes.resize(size_t(m.size));
    z_stream z{};
    if (inflateInit2(&z, -MAX_WBITS) != Z_OK) fail(path(), "cannot initialize zlib");
    // zlib counts in uInt (32 bits): feed and drain in pieces.
    constexpr uint64_t kPiece = std::numeric_limits<uInt>::max();
    uint64_t consumed = 0, produced = 0;
    int status = Z_OK;
    while (status == Z_OK) {
      z.next_in = const_cast<Bytef*>(packed + consumed);
      z.avail_in = uInt(std::min(m.compressed_size - consumed, kPiece));
      z.next_out = bytes.data() + produced;
      z.avail_out = uInt(std::min(m.size - produced, kPiece));
      const uInt in_before = z.avail_in, out_before = z.avail_out;
      status = inflate(&z, Z_NO_FLUSH);
      consumed += in_before - z.avail_in;
      produced += out_before - z.avail_out;
      if (status == Z_OK && in_before == z.avail_in && out_before == z.avail_out) break;  // no progress
    }
    inflateEnd(&z);
    if (status != Z_STREAM_END || produced != m.size)
      fail(path(), "array \"" + key + "\" does not decompress (corrupt or truncated)");
  } else {
    fail(path(), "array \"" + key + "\" uses zip compression method " + std::to_string(m.method) +
                     "; re-save it with np.savez or np.savez_compressed");
  }
  const uint32_t crc = uint32_t(crc32_z(0L, bytes.data(), bytes.size()));
  if (crc != m.crc32) fail(path(), "array \"" + key + "\" fails its CRC check (corrupt download?)");
  NpyArray a = parse_npy(bytes.data(), bytes.size(), name);
  if (a.dtype != "<f4") throw Error(name + " has dtype " + a.dtype + "; expected float32 (<f4)");
  return a;
}

}  // namespace pg
