complete -c zre-ping -l interval -d 'Ping each peer again every D' -r
complete -c zre-ping -s c -l count -d 'Stop once every peer was pinged N times (implies --interval 1s)' -r
complete -c zre-ping -s W -l reply-timeout -d 'A ping not answered within D is lost' -r
complete -c zre-ping -s f -l format -d 'Output format' -r -f -a "json\t'One JSON object per line (NDJSON)'
human\t'One readable line per event, coloured on a terminal unless NO_COLOR is set'"
complete -c zre-ping -s n -l name -d 'Our node name (default: the first 6 hex digits of our UUID)' -r
complete -c zre-ping -s g -l group -d 'Join GROUP (repeatable)' -r
complete -c zre-ping -l header -d 'Send this header to every peer (repeatable)' -r
complete -c zre-ping -s i -l interface -d 'Network interface, by name or IPv4 address (default: the first non-loopback one)' -r
complete -c zre-ping -s p -l port -d 'UDP beacon port; nodes must share it to find each other' -r
complete -c zre-ping -l evasive -d 'A peer quiet this long is reported evasive (100ms to 1d, less than --expired)' -r
complete -c zre-ping -l expired -d 'A peer quiet this long is removed (exit); at most 1d' -r
complete -c zre-ping -l beacon-interval -d 'How often to send a beacon (10ms to 1d)' -r
complete -c zre-ping -s v -l verbose -d 'Log protocol decisions on stderr'
complete -c zre-ping -s h -l help -d 'Print help (see more with \'--help\')'
complete -c zre-ping -s V -l version -d 'Print version'
