"""mmdata.train"""
