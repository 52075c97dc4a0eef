from ettin_rerank.cli import main

raise SystemExit(main())
