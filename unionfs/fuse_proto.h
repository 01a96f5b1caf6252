/*
 * The request and reply headers of the FUSE protocol (linux/fuse.h), for the
 * code that reads requests and writes replies below libfuse: libfuse 3.14
 * keeps its copies private.
 */
#pragma once

#include <stdint.h>

struct fuse_proto_in_header {
	uint32_t len, opcode;
	uint64_t unique, nodeid;
	uint32_t uid, gid, pid;
	uint16_t total_extlen, padding;
};

struct fuse_proto_out_header {
	uint32_t len;
	int32_t error;
	uint64_t unique;
};
