complete -c zre-keygen -s n -l name -d 'The name written into the certificates\' metadata' -r
complete -c zre-keygen -l generate -d 'Print this command\'s man page or completion script, and exit' -r -f -a "man\t'The man page (roff)'
bash\t'The bash completion script'
zsh\t'The zsh completion script'
fish\t'The fish completion script'"
complete -c zre-keygen -s h -l help -d 'Print help (see more with \'--help\')'
complete -c zre-keygen -s V -l version -d 'Print version'
