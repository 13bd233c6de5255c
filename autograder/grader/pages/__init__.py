"""What people read: feedback pages and published worksheets, made inert and readable offline."""
