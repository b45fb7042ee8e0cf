from deepcart.cli import main

raise SystemExit(main())
