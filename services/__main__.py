from services.cluster import main

raise SystemExit(main())
