# bench/ -- benchmarks, never run by `make check`.  Only shipped in the
# tarball: bench/sync-vs-mbsync builds its own helper (bench/rawfetch.c)
# with a direct cc command line.  bench/gen-mail.py is listed in Makefile.am.
EXTRA_DIST += bench/README.md bench/sync-vs-mbsync bench/rawfetch.c \
	bench/measure.py bench/report.py bench/push-latency bench/idle-scale \
	bench/send-bench bench/smtppeer.py bench/soak bench/modes bench/api-bench \
	bench/crm-relink
