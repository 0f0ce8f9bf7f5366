complete -c zre-listen -s c -l count -d 'Exit after printing N events' -r
complete -c zre-listen -s t -l timeout -d 'Exit after D (e.g. 10s)' -r
complete -c zre-listen -s f -l format -d 'Output format' -r -f -a "json\t'One JSON object per line (NDJSON)'
human\t'One readable line per event, coloured on a terminal unless NO_COLOR is set'"
complete -c zre-listen -s n -l name -d 'Our node name (default: the first 6 hex digits of our UUID)' -r
complete -c zre-listen -s g -l group -d 'Join GROUP (repeatable)' -r
complete -c zre-listen -l header -d 'Send this header to every peer (repeatable)' -r
complete -c zre-listen -s i -l interface -d 'Network interface, by name or IPv4 address (default: the first non-loopback one)' -r
complete -c zre-listen -s p -l port -d 'UDP beacon port; nodes must share it to find each other' -r
complete -c zre-listen -l interval -d 'How often to send a beacon (10ms to 1d)' -r
complete -c zre-listen -l evasive -d 'A peer quiet this long is reported evasive (100ms to 1d, less than --expired)' -r
complete -c zre-listen -l expired -d 'A peer quiet this long is removed (exit); at most 1d' -r
complete -c zre-listen -s v -l verbose -d 'Log protocol decisions on stderr'
complete -c zre-listen -s h -l help -d 'Print help (see more with \'--help\')'
complete -c zre-listen -s V -l version -d 'Print version'
