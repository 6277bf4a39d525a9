from streamctl.cli import main

main()
