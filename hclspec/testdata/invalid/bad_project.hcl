# want: Invalid project name @ 2:11
project = "Shop_App"
