complete -c zre-shout -l peers -d 'Wait until N members of the group are present (0: do not wait)' -r
complete -c zre-shout -s w -l wait -d 'Give up when the recipients are not there after D' -r
complete -c zre-shout -s n -l name -d 'Our node name (default: the first 6 hex digits of our UUID)' -r
complete -c zre-shout -s g -l group -d 'Join GROUP (repeatable)' -r
complete -c zre-shout -l header -d 'Send this header to every peer (repeatable)' -r
complete -c zre-shout -s i -l interface -d 'Network interface, by name or IPv4 address (default: the first non-loopback one)' -r
complete -c zre-shout -s p -l port -d 'UDP beacon port; nodes must share it to find each other' -r
complete -c zre-shout -l interval -d 'How often to send a beacon (10ms to 1d)' -r
complete -c zre-shout -l evasive -d 'A peer quiet this long is reported evasive (100ms to 1d, less than --expired)' -r
complete -c zre-shout -l expired -d 'A peer quiet this long is removed (exit); at most 1d' -r
complete -c zre-shout -l json -d 'Read NDJSON objects from stdin: "text" or "frames", optional "group" (zre-shout)'
complete -c zre-shout -s v -l verbose -d 'Log protocol decisions on stderr'
complete -c zre-shout -s h -l help -d 'Print help (see more with \'--help\')'
complete -c zre-shout -s V -l version -d 'Print version'
