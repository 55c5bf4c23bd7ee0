"""mmdata.augment"""
