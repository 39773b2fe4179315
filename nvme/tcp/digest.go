package tcp

import "hash/crc32"

// castagnoli is CRC32C; hash/crc32 uses the SSE4.2 instruction for it on
// amd64, which keeps data digests cheap enough to leave on.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum returns the CRC32C digest of b as NVMe/TCP computes header and
// data digests (sent little-endian).
func Checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// updateChecksum continues a digest over more bytes.
func updateChecksum(crc uint32, b []byte) uint32 { return crc32.Update(crc, castagnoli, b) }
