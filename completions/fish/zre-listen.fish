complete -c zre-listen -s c -l count -d 'Exit 0 after printing N events (those --type and --from select)' -r
complete -c zre-listen -s t -l timeout -d 'Exit after D (e.g. 10s); with --count, exit 1 when D ends the run first' -r
complete -c zre-listen -l type -d 'Print only events of these types (comma-separated or repeated)' -r -f -a "enter\t'A peer appeared'
exit\t'A peer left or expired'
join\t'A peer joined a group'
leave\t'A peer left a group'
whisper\t'A message to us'
shout\t'A message to a group'
evasive\t'A peer has been quiet for --evasive'
silent\t'A peer has been quiet for longer'
leader\t'A group elected its leader (--contest)'
stop\t'We stopped (printed last)'"
complete -c zre-listen -l from -d 'Print only events from this peer, by name or UUID (repeatable: any of them)' -r
complete -c zre-listen -s f -l format -d 'Output format' -r -f -a "json\t'One JSON object per line (NDJSON)'
human\t'One readable line per event, what peers send escaped, coloured on a terminal'"
complete -c zre-listen -l color -d 'When --format human is coloured' -r -f -a "auto\t'On a terminal, unless NO_COLOR is set (not empty); CLICOLOR_FORCE (not 0) forces it'
always\t'Always, also into a pipe or a file'
never\t'Never'"
complete -c zre-listen -s n -l name -d 'Our node name, 1 to 255 bytes (default: the first 6 hex digits of our UUID)' -r
complete -c zre-listen -s g -l group -d 'Join GROUP, 1 to 255 bytes (repeatable)' -r
complete -c zre-listen -l contest -d 'Join GROUP and contest its leadership (Zyre\'s draft elections): the member with the lowest UUID among those contesting leads, and each election ends with a leader event naming it (repeatable)' -r
complete -c zre-listen -l header -d 'Tell every peer this header when we meet (repeatable; KEY is 1 to 255 bytes)' -r
complete -c zre-listen -s i -l interface -d 'Network interface, by name or IP address (default: ZRE_INTERFACE, else ZSYS_INTERFACE as Zyre reads it, else the first non-loopback one)' -r -f -a "(__fish_print_interfaces)"
complete -c zre-listen -s p -l port -d 'UDP beacon port, 1 to 65535; nodes must share it to find each other' -r
complete -c zre-listen -l uuid -d 'Our UUID, 32 hex digits in either case, hyphens allowed (default: random, or the one in --identity)' -r -f
complete -c zre-listen -l identity -d 'Keep our UUID in FILE across restarts: read it, or create it with a random one' -r -F
complete -c zre-listen -l mailbox-port -d 'TCP port of our mailbox, 1 to 65535 (default, or 0: any free port)' -r
complete -c zre-listen -l peer -d 'Connect to a peer\'s mailbox at tcp://HOST:PORT and say HELLO, without beacons or its UUID; its HELLO back tells who it is. Retried until it answers, and after it leaves (repeatable; ZRE_PEERS takes a comma-separated list)' -r -f
complete -c zre-listen -l advertise -d 'Tell peers to connect to our mailbox at tcp://HOST:PORT (behind NAT or in a container: an address and port forwarded to --mailbox-port). Sent in HELLO and published by gossip; peers that hear our beacon use its source address instead' -r -f
complete -c zre-listen -l gossip-bind -d 'Be a gossip hub on tcp://IP:PORT: nodes given --gossip-connect (ours or Zyre\'s) meet there, across subnets (repeatable; ZRE_GOSSIP_BIND takes a comma-separated list)' -r -f
complete -c zre-listen -l gossip-connect -d 'Meet peers through the gossip hub at tcp://HOST:PORT, ours or Zyre\'s (repeatable; ZRE_GOSSIP_CONNECT takes a comma-separated list)' -r -f
complete -c zre-listen -l curve -d 'CURVE: encrypt and authenticate with this secret certificate (CZMQ\'s zcert; FILE or FILE_secret, as zre-keygen writes them); only CURVE peers are met' -r -F
complete -c zre-listen -l allow -d 'With --curve: accept only the keys in DIR (public certificates, as zauth) or FILE (Z85 keys, one a line), re-read when it changes; without it, any key is accepted' -r -F
complete -c zre-listen -l interval -d 'How often to send a beacon (10ms to 1d)' -r
complete -c zre-listen -l evasive -d 'A peer quiet this long is reported evasive (100ms to 1d, less than --expired)' -r
complete -c zre-listen -l expired -d 'A peer quiet this long is removed (exit); at most 1d' -r
complete -c zre-listen -l generate -d 'Print this command\'s man page or completion script, and exit' -r -f -a "man\t'The man page (roff)'
bash\t'The bash completion script'
zsh\t'The zsh completion script'
fish\t'The fish completion script'"
complete -c zre-listen -l no-beacon -d 'Send and hear no beacons (no UDP socket at all): we meet only peers that connect to us and those given by --peer'
complete -c zre-listen -s v -l verbose -d 'Log protocol decisions on stderr'
complete -c zre-listen -l ipv6 -d 'Run over IPv6 as Zyre does with ZSYS_IPV6=1: beacons to ff02::1 on the interface, only IPv6 peers; the interface\'s first IPv6 address, or the one given to --interface'
complete -c zre-listen -s h -l help -d 'Print help (see more with \'--help\')'
complete -c zre-listen -s V -l version -d 'Print version'
