from chatclient.cli import main

raise SystemExit(main())
