from torrip.cli.main import main

raise SystemExit(main())
