/* The UDP ceiling for bench/run.sh: a "server" that does no DNS work at all. It reads up to
 * 32 datagrams with one recvmmsg(2), turns each into a response by setting QR (so dnsperf
 * counts it answered), and sends them back with one sendmmsg(2): the same system calls
 * backhaul-dns and gdnsd make, and nothing else. A DNS server's QPS against it says how much
 * of the machine's UDP capacity its own work takes.
 *
 * Its socket keeps the kernel's default path-MTU setting, and each datagram it sends takes an
 * IP ID from the kernel's shared generator (perf on Linux 6.18: about 4% of its CPU), as
 * gdnsd's do (IP_PMTUDISC_OMIT). backhaul-dns sets DF (IP_PMTUDISC_PROBE, src/dns/listen.rs) and
 * skips that; with the same setting the reflector answers about 4-5% more.
 *
 *   cc -O2 -o reflector bench/reflector.c && taskset -c 0 ./reflector 127.0.0.1 25538
 *
 * Runs until killed (bench/run.sh ends it by its PID). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 32
#define SIZE 4096

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: reflector ADDRESS PORT\n");
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in at = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
    if (fd < 0 || inet_pton(AF_INET, argv[1], &at.sin_addr) != 1 ||
        bind(fd, (struct sockaddr *)&at, sizeof at) != 0) {
        perror("reflector");
        return 1;
    }
    static char bufs[BATCH][SIZE];
    struct sockaddr_in peers[BATCH];
    struct iovec iovs[BATCH];
    struct mmsghdr msgs[BATCH];
    for (;;) {
        memset(msgs, 0, sizeof msgs);
        for (int i = 0; i < BATCH; i++) {
            iovs[i] = (struct iovec){.iov_base = bufs[i], .iov_len = SIZE};
            msgs[i].msg_hdr.msg_name = &peers[i];
            msgs[i].msg_hdr.msg_namelen = sizeof peers[i];
            msgs[i].msg_hdr.msg_iov = &iovs[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        int n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
        if (n <= 0)
            continue;
        for (int i = 0; i < n; i++) {
            if (msgs[i].msg_len > 2)
                bufs[i][2] |= 0x80; /* QR: a response */
            iovs[i].iov_len = msgs[i].msg_len;
        }
        for (int sent = 0; sent < n;) {
            int r = sendmmsg(fd, msgs + sent, n - sent, 0);
            sent += r > 0 ? r : 1;
        }
    }
}
